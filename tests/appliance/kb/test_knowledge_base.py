"""Adding is idempotent by content hash; changes, removals and rebuilds keep the index consistent."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from appliance.kb.base import KnowledgeBase
from appliance.kb.config import KnowledgeConfig
from appliance.kb.documents import read_documents
from appliance.kb.embedding import Embedder
from tests.appliance.kb.conftest import medquad_pairs


def _chunk_ids(knowledge: KnowledgeBase) -> list[str]:
    return [chunk.chunk_id for chunk in knowledge.store.chunks()]


def test_every_format_is_indexed(kb_copy: KnowledgeBase, built_kb: tuple[Path, dict[str, Path]]) -> None:
    _, sources = built_kb
    listed = {summary.source: summary for summary in kb_copy.sources()}
    assert set(listed) == {str(p.resolve()) for p in sources.values()}
    assert all(summary.chunks >= 1 for summary in listed.values())
    titles = {chunk.title for chunk in kb_copy.store.chunks()}
    assert {"Sepsis Bundle Protocol", "warfarin", "Hand Hygiene Policy", "Formulary: Metformin"} <= titles
    assert {pair["focus"] for pair in medquad_pairs()} <= titles


def test_re_adding_unchanged_documents_does_nothing(
    kb_copy: KnowledgeBase, built_kb: tuple[Path, dict[str, Path]]
) -> None:
    _, sources = built_kb
    before_ids, generation = _chunk_ids(kb_copy), kb_copy.store.generation
    report = kb_copy.add(list(sources.values()))
    assert (report.added, report.updated, report.removed, report.chunks) == (0, 0, 0, 0)
    assert report.unchanged == len(list(kb_copy.store.documents()))
    assert kb_copy.store.generation == generation
    assert _chunk_ids(kb_copy) == before_ids


def test_changed_and_dropped_documents_are_synced(tmp_path: Path, embedder: Embedder) -> None:
    source = tmp_path / "pairs.jsonl"
    pairs = medquad_pairs()[:4]
    source.write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    knowledge = KnowledgeBase.open(tmp_path / "kb", KnowledgeConfig(), create=True, embedder=embedder)
    assert knowledge is not None
    first = knowledge.add([source])
    assert first.added == 4 and first.chunks >= 4

    changed = dict(pairs[0], answer=pairs[0]["answer"] + " Updated by the formulary committee.")
    source.write_text("".join(json.dumps(p) + "\n" for p in [changed, *pairs[1:3]]), encoding="utf-8")
    second = knowledge.add([source])
    assert (second.added, second.updated, second.unchanged, second.removed) == (0, 1, 2, 1)
    texts = " ".join(chunk.text for chunk in knowledge.store.chunks())
    assert "Updated by the formulary committee." in texts
    assert pairs[3]["answer"].split(".")[0] not in texts
    knowledge.close()


def test_remove_by_source_and_rebuild(kb_copy: KnowledgeBase, built_kb: tuple[Path, dict[str, Path]]) -> None:
    _, sources = built_kb
    removed = kb_copy.remove([str(sources["markdown"])])
    assert removed == 1
    assert "Sepsis Bundle Protocol" not in {chunk.title for chunk in kb_copy.store.chunks()}
    assert "sepsis bundle protocol" not in {entity.norm for entity in kb_copy.store.entities()}
    assert kb_copy.remove(["/no/such/file.md"]) == 0

    ids = _chunk_ids(kb_copy)
    report = kb_copy.rebuild()
    assert report.chunks == len(ids)
    assert sorted(_chunk_ids(kb_copy)) == sorted(ids)  # citations stay valid across a rebuild
    assert kb_copy.store.graph_is_current


def test_interrupted_add_resumes(tmp_path: Path, embedder: Embedder, built_kb: tuple[Path, dict[str, Path]]) -> None:
    """Documents are committed in batches; what was committed is skipped on the next run."""
    _, sources = built_kb
    medquad = tmp_path / "medquad.jsonl"
    shutil.copy(sources["medquad"], medquad)
    knowledge = KnowledgeBase.open(tmp_path / "kb", KnowledgeConfig(), create=True, embedder=embedder)
    assert knowledge is not None
    documents = read_documents(medquad)
    knowledge._write([(str(medquad.resolve()), documents[0])], None)
    report = knowledge.add([medquad])
    assert report.unchanged == 1 and report.added == len(documents) - 1
    knowledge.close()
