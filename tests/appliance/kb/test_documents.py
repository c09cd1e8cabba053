"""Each supported format becomes titled sections; bad input is a typed, content-free error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.kb.chunking import chunk_document
from appliance.kb.documents import read_documents
from deid.errors import InputError
from tests.appliance.kb.conftest import PDF_TEXT, medquad_pairs, write_sources


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_sources(tmp_path_factory.mktemp("sources"))


def test_markdown_title_and_nested_headings(sources: dict[str, Path]) -> None:
    (document,) = read_documents(sources["markdown"])
    assert document.title == "Sepsis Bundle Protocol"
    assert [s.heading for s in document.sections] == ["", "First hour", "Reassessment"]
    assert "blood cultures" in document.sections[1].text


def test_plain_text_titled_by_file_name(sources: dict[str, Path]) -> None:
    (document,) = read_documents(sources["text"])
    assert document.title == "warfarin"
    assert "target INR" in document.sections[0].text


def test_html_keeps_visible_text_only(sources: dict[str, Path]) -> None:
    (document,) = read_documents(sources["html"])
    assert document.title == "Hand Hygiene Policy"
    text = " ".join(s.text for s in document.sections)
    assert "alcohol-based hand rub" in text
    assert "tracking" not in text and "color" not in text
    assert document.sections[0].heading == "When to clean hands"


def test_pdf_text_per_page(sources: dict[str, Path]) -> None:
    (document,) = read_documents(sources["pdf"])
    assert document.sections[0].heading == "page 1"
    assert "amoxicillin challenge" in document.sections[0].text
    assert document.sections[0].text.startswith(PDF_TEXT.split(":")[0])


def test_generic_jsonl_record_is_a_document(sources: dict[str, Path]) -> None:
    (document,) = read_documents(sources["generic"])
    assert document.title == "Formulary: Metformin"
    assert document.url == "https://intranet.example/formulary/metformin"


def test_medquad_pairs_grouped_by_source_document(sources: dict[str, Path]) -> None:
    documents = read_documents(sources["medquad"])
    pairs = medquad_pairs()
    assert len(documents) == len({(p["source"], p["id"].split("-")[0]) for p in pairs})
    by_url = {d.url: d for d in documents}
    for pair in pairs:
        document = by_url[pair["url"]]
        assert document.title == pair["focus"] or pair["focus"] in {e.name for e in document.entities}
        assert any(s.text == " ".join(pair["answer"].split()) for s in document.sections)
        # the question is the benchmark's query: it must not be indexed by default
        assert all(s.heading != pair["question"] for s in document.sections)


def test_medquad_entities_carry_cui_when_present(tmp_path: Path) -> None:
    record = {
        "id": "0000009-1", "source": "GHR", "url": "https://ghr.example/x", "focus": "Canavan disease",
        "cui": "C0206307", "semantic_type": "T047", "qtype": "information",
        "question": "What is Canavan disease?", "answer": "Canavan disease is a rare inherited disorder.",
    }
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    (document,) = read_documents(path)
    (entity,) = document.entities
    assert (entity.name, entity.cui, entity.semantic_type) == ("Canavan disease", "C0206307", "T047")


def test_chunks_stay_within_budget_and_sections() -> None:
    from appliance.kb.documents import Section, SourceDocument

    long_text = " ".join(f"Sentence number {i} about renal dosing." for i in range(200))
    document = SourceDocument("k", "Renal dosing", None, "text", (Section("A", long_text), Section("B", "Short.")))
    chunks = chunk_document(document, chunk_words=50, overlap_words=10)
    assert all(len(c.text.split()) <= 50 for c in chunks)
    assert [c.section for c in chunks].count("B") == 1
    assert chunks[0].part == 0 and chunks[1].part == 1
    assert len({c.chunk_id for c in chunks}) == len(chunks)
    covered = " ".join(c.text for c in chunks if c.section == "A")
    assert "Sentence number 199" in covered and "Sentence number 0 " in covered


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", "{not json}\n", "line 1: not valid JSON"),
        ("odd.jsonl", json.dumps({"foo": 1}) + "\n", "needs question/answer/focus or title/text"),
        ("notes.docx", "x", "unsupported knowledge file type"),
        ("broken.pdf", "%PDF-1.4 garbage", "cannot read PDF"),
    ],
)
def test_bad_input_is_a_typed_error(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_documents(path)
