"""Drawing a reproducible random sample of de-identified documents for a privacy officer to annotate.

The sample is drawn from the files a ``deid run`` wrote, through the same readers that wrote
them, so a document is what the pipeline called one: a note, a JSONL line, a CSV row, a FHIR
resource or Bundle. Structured documents are shown as ``field: value`` lines, which is how a
person reads them and what the detector is then scored on. One pass with a seeded reservoir:
memory is bounded by the sample, not the run, and the same seed over the same run draws the
same documents.

The sheet is the input of ``appliance deid evaluate`` once its ``spans`` are filled in.
Annotating de-identified output measures residual PHI: every span the officer marks is PHI the
run let through.
"""

from __future__ import annotations

import csv
import html
import io
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deid.errors import UnsupportedFormatError
from deid.fileio import atomic_write_text
from deid.keystore import keyed_hash
from deid.readers.fhir import FhirJsonFormat
from deid.readers.formats import format_for
from deid.readers.jsonl import JsonLinesFormat

SHEET_JSONL = "sheet.jsonl"
SHEET_CSV = "sheet.csv"
SHEET_HTML = "sheet.html"
MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class Drawn:
    id: str
    file: str
    position: str
    text: str


@dataclass(frozen=True, slots=True)
class SampleSummary:
    seed: int
    requested: int
    population: int
    drawn: int
    files: int
    skipped_files: int


def _leaves(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    elif isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool)):
        yield f"{path}: {value}"


def document_text(data: Any, json_format: bool = False) -> str | None:
    """A unit's content as text to annotate: a note as it is, a JSON object or CSV row as
    ``field: value`` lines; None for a unit that holds no document (a blank or broken line).
    ``json_format``: the unit comes from a JSON reader, so only a JSON object is a document."""
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], list) and isinstance(data[1], list):
        columns, row = data
        return "\n".join(f"{column}: {value}" for column, value in zip(columns, row, strict=False)) if row else None
    if not isinstance(data, bytes):
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.strip():
        return None
    if not json_format:
        return text
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None
    return "\n".join(_leaves(record, "")) if isinstance(record, dict) else None


def _output_files(run_dir: Path) -> Iterator[Path]:
    for path in sorted(run_dir.rglob("*")):
        relative = path.relative_to(run_dir)
        if any(part.startswith(".") for part in relative.parts):
            continue  # the run's state folder (.deid-state) and partial files are not documents
        if path.is_file() and not path.is_symlink():
            yield path


def draw(run_dir: Path, n: int, seed: int, secret: bytes) -> tuple[list[Drawn], SampleSummary]:
    """``n`` documents drawn uniformly from every document in ``run_dir`` (all if there are fewer)."""
    if n < 1:
        raise ValueError("the sample size must be at least 1")
    rng = random.Random(seed)
    reservoir: list[Drawn] = []
    population = files = skipped = 0
    for path in _output_files(run_dir):
        name = path.relative_to(run_dir).as_posix()
        try:
            reader = format_for(path)
        except UnsupportedFormatError:
            skipped += 1
            continue
        files += 1
        json_format = isinstance(reader, JsonLinesFormat | FhirJsonFormat)
        for unit, _, _ in reader.units(path, name, 0, 0):
            text = document_text(unit.data, json_format)
            if text is None:
                continue
            population += 1
            slot = population - 1 if population <= n else rng.randrange(population)
            if slot < n:
                drawn = Drawn(keyed_hash(secret, f"sample\x1f{name}\x1f{unit.position}"), name, unit.position, text)
                if population <= n:
                    reservoir.append(drawn)
                else:
                    reservoir[slot] = drawn
    reservoir.sort(key=lambda item: item.id)
    return reservoir, SampleSummary(seed, n, population, len(reservoir), files, skipped)


def _csv(drawn: list[Drawn]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "text", "phi_found (mark each PHI phrase; fill sheet.jsonl spans for evaluate)"])
    for item in drawn:
        writer.writerow([item.id, item.text, ""])
    return buffer.getvalue()


def _html(drawn: list[Drawn], summary: SampleSummary) -> str:
    parts = [
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>De-identification review sheet</title>",
        (
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}pre{white-space:pre-wrap;"
            "background:#f6f6f6;padding:1em;border:1px solid #ccc}code{font-size:90%}</style></head><body>"
        ),
        "<h1>De-identification review sheet</h1>",
        (
            f"<p>{summary.drawn} of {summary.population} documents, seed {summary.seed}. Mark every phrase that is "
            "still PHI: add <code>{\"start\", \"end\", \"label\"}</code> to the document's <code>spans</code> in "
            f"<code>{SHEET_JSONL}</code> (offsets count characters of the text), then run "
            f"<code>appliance deid evaluate {SHEET_JSONL}</code>.</p>"
        ),
    ]
    for item in drawn:
        parts.append(f"<h2><code>{html.escape(item.id)}</code></h2><pre>{html.escape(item.text)}</pre>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_sheet(out_dir: Path, run_dir: Path, drawn: list[Drawn], summary: SampleSummary) -> None:
    """The annotation sheet (JSONL in the gold shape, CSV and HTML views) and its manifest, each atomic."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps({"id": item.id, "text": item.text, "spans": []}, ensure_ascii=False) + "\n" for item in drawn)
    atomic_write_text(out_dir / SHEET_JSONL, lines)
    atomic_write_text(out_dir / SHEET_CSV, _csv(drawn))
    atomic_write_text(out_dir / SHEET_HTML, _html(drawn, summary))
    manifest = {
        "run_dir": run_dir.name,
        "seed": summary.seed,
        "requested": summary.requested,
        "population": summary.population,
        "drawn": summary.drawn,
        "files": summary.files,
        "skipped_files": summary.skipped_files,
        "documents": [{"id": item.id, "file": item.file, "position": item.position} for item in drawn],
    }
    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n")
