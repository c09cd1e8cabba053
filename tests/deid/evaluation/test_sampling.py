"""Sampling a run's output: reproducible, uniform, every format read as documents, sheet in the gold shape."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from deid.evaluation.gold import GoldDocument, read_gold
from deid.evaluation.sampling import (
    MANIFEST,
    SHEET_CSV,
    SHEET_HTML,
    SHEET_JSONL,
    document_text,
    draw,
    write_sheet,
)

SECRET = b"k" * 32


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """Files shaped like a deid run's output (the sampler reads them with the run's own readers)."""
    folder = tmp_path / "run"
    (folder / "sub").mkdir(parents=True)
    (folder / ".deid-state").mkdir()
    (folder / ".deid-state" / "journal.jsonl").write_text('{"not": "a document"}\n')
    lines = [json.dumps({"id": f"r{i}", "text": f"Note {i}: seen <b>today</b>.", "meta": {"ward": f"W{i}"}}) for i in range(40)]
    (folder / "notes.jsonl").write_text("\n".join(lines[:20]) + "\n\n" + "\n".join(lines[20:]) + "\n{broken\n")
    (folder / "sub" / "table.csv").write_text("id,note\n" + "".join(f"{i},row note {i}\n" for i in range(15)))
    for i in range(5):
        (folder / "sub" / f"n{i}.txt").write_text(f"Plain note {i}.\n")
    (folder / "image.png").write_bytes(b"\x89PNG")
    return folder


def test_same_seed_same_draw_other_seed_other_draw(run_dir: Path) -> None:
    first, summary = draw(run_dir, 10, 5, SECRET)
    again, _ = draw(run_dir, 10, 5, SECRET)
    other, _ = draw(run_dir, 10, 6, SECRET)
    assert first == again and first != other
    assert (summary.population, summary.drawn, summary.files, summary.skipped_files) == (60, 10, 7, 1)
    assert len({item.id for item in first}) == 10
    assert all(len(item.id) == 64 and "notes" not in item.id for item in first)


def test_every_document_is_equally_likely(run_dir: Path) -> None:
    counts: Counter[str] = Counter()
    for seed in range(300):
        drawn, _ = draw(run_dir, 6, seed, SECRET)
        counts.update(item.position for item in drawn)
    assert len(counts) == 60  # every document drawn at least once; expected 30 times each
    assert min(counts.values()) >= 10 and max(counts.values()) <= 55


def test_a_sample_larger_than_the_run_takes_everything(run_dir: Path) -> None:
    drawn, summary = draw(run_dir, 500, 1, SECRET)
    assert summary.drawn == summary.population == 60 == len(drawn)
    files = Counter(item.file for item in drawn)
    assert files["notes.jsonl"] == 40 and files["sub/table.csv"] == 15
    assert not [item for item in drawn if item.file.startswith(".")]


def test_structured_documents_read_as_field_lines() -> None:
    assert document_text((["id", "note"], ["3", "row note"])) == "id: 3\nnote: row note"
    record = b'{"id": 1, "text": "hi", "n": {"a": [2, "x"]}, "f": true}\n'
    assert document_text(record, json_format=True) == "id: 1\ntext: hi\nn.a[0]: 2\nn.a[1]: x"
    assert document_text(b"{broken\n", json_format=True) is None and document_text(b"[1]", json_format=True) is None
    assert document_text(b"{a note in braces}\n") == "{a note in braces}\n"
    assert document_text(b"free text\n") == "free text\n"
    assert document_text(b"   \n") is None and document_text(None) is None and document_text(b"\xff") is None


def test_sheet_is_gold_shaped_and_the_manifest_names_the_draw(run_dir: Path, tmp_path: Path) -> None:
    drawn, summary = draw(run_dir, 8, 11, SECRET)
    out = tmp_path / "sheet"
    write_sheet(out, run_dir, drawn, summary)
    documents = list(read_gold(out / SHEET_JSONL))
    assert all(isinstance(d, GoldDocument) and d.spans == () for d in documents)
    assert [d.id for d in documents] == [item.id for item in drawn]  # type: ignore[union-attr]
    assert [d.text for d in documents] == [item.text for item in drawn]  # type: ignore[union-attr]
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["seed"] == 11 and manifest["requested"] == 8 and manifest["population"] == 60
    assert [row["id"] for row in manifest["documents"]] == [item.id for item in drawn]
    page = (out / SHEET_HTML).read_text()
    assert "<script" not in page and "http" not in page
    if any("<b>" in item.text for item in drawn):
        assert "&lt;b&gt;" in page and "<b>today" not in page
    assert len((out / SHEET_CSV).read_text().splitlines()) >= 9
    assert not [p for p in out.iterdir() if p.name.endswith(".partial")]


def test_sample_size_must_be_positive(run_dir: Path) -> None:
    with pytest.raises(ValueError):
        draw(run_dir, 0, 1, SECRET)
