"""Gold files: any label vocabulary, bad lines reported by number and a fixed reason, never content."""

from __future__ import annotations

import json
from pathlib import Path

from deid.evaluation.gold import GoldDocument, label_type, read_gold
from deid.evaluation.scoring import GoldSpan
from deid.malformed import Malformed

CANARY = "Quillfeatherzyx"


def test_labels_become_entity_type_names() -> None:
    assert [label_type(x) for x in ("HCPName", "PTName", "RelativeProxyName", "DateYear", "date of birth")] == [
        "HCP_NAME", "PT_NAME", "RELATIVE_PROXY_NAME", "DATE_YEAR", "DATE_OF_BIRTH",
    ]
    assert label_type("Ünïcode label") == "UNICODE_LABEL"
    assert label_type("123") == "L_123" and label_type("--") == "UNLABELLED"
    assert len(label_type("x" * 500)) <= 40


def test_bad_lines_are_numbered_and_say_nothing_of_their_content(tmp_path: Path) -> None:
    text = f"Patient {CANARY} seen 01/02/2020"
    good = {"id": "a", "text": text, "spans": [{"start": 8, "end": 8 + len(CANARY), "label": "PTName", "text": CANARY}]}
    lines = [
        json.dumps(good),
        f"{{not json {CANARY}",
        json.dumps([CANARY]),
        json.dumps({"id": "b", "text": text, "spans": [{"start": 0, "end": 999, "label": "X"}]}),
        json.dumps({"id": "c", "text": text, "spans": [{"start": 0, "end": 4, "label": "X", "text": CANARY}]}),
        json.dumps({"id": "a", "text": text, "spans": []}),
        "",
        json.dumps({"id": 7, "text": text}),
        json.dumps({"id": "d", "text": 5}),
        json.dumps({"id": "e", "text": text, "spans": [{"start": 0, "end": 4, "label": ""}]}),
    ]
    path = tmp_path / "gold.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"\xff\xfe\n")
    items = list(read_gold(path))
    documents = [item for item in items if isinstance(item, GoldDocument)]
    malformed = [item for item in items if isinstance(item, Malformed)]
    assert [(d.line, d.id) for d in documents] == [(1, "a"), (8, "7")]
    assert documents[0].spans == (GoldSpan(8, 8 + len(CANARY), "PT_NAME"),)
    assert documents[1].spans == ()
    assert [m.line for m in malformed] == [2, 3, 4, 5, 6, 9, 10, 11]
    assert [m.detail for m in malformed][:5] == [
        "invalid JSON", "not a JSON object", "span 1: offsets outside the text or empty",
        "span 1: its text does not match its offsets", "duplicate id",
    ]
    assert [m.reason for m in malformed] == ["invalid_json", "not_object", "bad_spans", "bad_spans", "duplicate_id",
                                             "bad_text", "bad_spans", "not_utf8"]
    assert malformed[-1].detail == "not UTF-8" and malformed[-1].position == "gold.jsonl:11"
    assert all(CANARY not in m.detail and "Patient" not in m.detail for m in malformed)
