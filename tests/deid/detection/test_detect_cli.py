"""``appliance deid detect`` and the parallel path: offsets, malformed lines, atomic output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from deid.config import DeidConfig
from deid.detection.engine import PhiDetector
from deid.detection.jsonl_detect import detect_jsonl
from deid.detection.parallel import detect_parallel

RECORDS = [
    {"id": "a", "text": "Seen by Dr. Okafor on 3/12/21, MRN 1234567."},
    {"id": 7, "text": "PT JOHN WHITAKER 92 YO, CALL 617-555-0101"},
    {"id": "empty", "text": ""},
]


def write_input(path: Path) -> None:
    lines = [json.dumps(RECORDS[0]), "{not json", json.dumps(RECORDS[1]), json.dumps({"id": "x"}), "",
             json.dumps(RECORDS[2]), json.dumps([1, 2])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_detect_jsonl_reports_bad_lines_and_keeps_the_rest(tmp_path: Path, detector: PhiDetector) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(source)
    report = detect_jsonl(source, target, DeidConfig(), workers=1, detector=detector)
    assert [m.line for m in report.malformed] == [2, 4, 7]
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [row["id"] for row in rows] == ["a", 7, "empty"]
    for row, record in zip(rows, RECORDS, strict=True):
        assert row["spans"] == [span.as_dict() for span in detector.detect(record["text"])]
        for span in row["spans"]:
            assert set(span) == {"start", "end", "entity_type", "score"}
    text = RECORDS[0]["text"]
    assert [text[s["start"] : s["end"]] for s in rows[0]["spans"]] == ["Okafor", "3/12/21", "1234567"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_cli_exit_code_and_messages_carry_no_record_text(tmp_path: Path) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_input(source)
    environment = {**os.environ, "APPLIANCE_HOME": str(tmp_path / "home")}
    environment.pop("APPLIANCE_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "deid", "detect", str(source), "-o", str(target)],
        capture_output=True, text=True, env=environment, timeout=240,
    )
    assert done.returncode == 3, done.stderr
    assert "in.jsonl:2:" in done.stderr and "in.jsonl:4:" in done.stderr and "in.jsonl:7:" in done.stderr
    assert "Okafor" not in done.stderr and "not json" not in done.stderr and "Traceback" not in done.stderr
    assert len(target.read_text().splitlines()) == 3


def test_parallel_matches_single_process(detector: PhiDetector) -> None:
    texts = [record["text"] for record in RECORDS] * 3
    assert detect_parallel(texts, workers=2) == [detector.detect(text) for text in texts]
