"""``appliance deid detect``: JSONL records in, PHI spans out, one output line per good record.

A malformed line is reported by its number (never its content) and skipped; the rest of the
file is still processed and the output appears atomically only when the whole input was read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from deid.config import DeidConfig
from deid.detection.parallel import detect_stream
from deid.fileio import atomic_output
from deid.malformed import Malformed, MalformedReason

if TYPE_CHECKING:
    from deid.detection.engine import PhiDetector


@dataclass
class DetectReport:
    records: int = 0
    spans: int = 0
    malformed: list[Malformed] = field(default_factory=list)


def _records(path: Path, report: DetectReport) -> Iterator[tuple[object, str]]:
    with open(path, encoding="utf-8", errors="strict") as handle:
        line_number = 0
        while True:
            line_number += 1
            skip = partial(_skip, report, path, line_number)
            try:
                line = handle.readline()
            except UnicodeDecodeError:
                skip(MalformedReason.not_utf8, "not valid UTF-8; the rest of the file cannot be read")
                return
            if not line:
                return
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                skip(MalformedReason.invalid_json, "not valid JSON")
                continue
            problem = _problem(record)
            if problem:
                skip(*problem)
                continue
            yield record["id"], record["text"]


def _skip(report: DetectReport, path: Path, line_number: int, reason: MalformedReason, detail: str) -> None:
    report.malformed.append(Malformed(f"{path}:{line_number}", reason, detail, line=line_number))


def _problem(record: object) -> tuple[MalformedReason, str] | None:
    if not isinstance(record, dict):
        return MalformedReason.not_object, "not a JSON object"
    if "id" not in record or not isinstance(record["id"], (str, int)) or isinstance(record["id"], bool):
        return MalformedReason.bad_id, "missing or non-scalar 'id'"
    if not isinstance(record.get("text"), str):
        return MalformedReason.bad_text, "missing or non-string 'text'"
    return None


def detect_jsonl(
    input_path: Path,
    output_path: Path,
    config: DeidConfig,
    workers: int | None = None,
    detector: PhiDetector | None = None,
) -> DetectReport:
    report = DetectReport()
    ids: list[object] = []

    def texts() -> Iterator[tuple[str, tuple[()]]]:
        for record_id, text in _records(input_path, report):
            ids.append(record_id)
            yield text, ()

    with atomic_output(output_path) as out:
        for index, spans in enumerate(detect_stream(texts(), config, workers, detector=detector)):
            out.write(json.dumps({"id": ids[index], "spans": [span.as_dict() for span in spans]}) + "\n")
            report.records += 1
            report.spans += len(spans)
    return report
