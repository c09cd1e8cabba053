"""What a run reads: the files under the given paths, each with its reader and output name.

A named file in an unknown format is an error; an unknown file inside a folder is skipped and
reported. The run's own state and output folders are never read as input.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deid.errors import RunInputError, UnsupportedFormatError
from deid.malformed import Malformed, MalformedReason
from deid.readers.base import RecordFormat
from deid.readers.fhir import FhirJsonFormat, FhirNdjsonFormat
from deid.readers.formats import format_for
from deid.readers.patients import build_patient_index, patients_in_json, patients_in_ndjson
from deid.run.publish import STATE_DIR


@dataclass(frozen=True, slots=True)
class InputFile:
    path: Path
    name: str  # output path relative to the output folder, POSIX form
    reader: RecordFormat


def collect_inputs(inputs: list[Path], out_dir: Path) -> tuple[list[InputFile], list[Malformed]]:
    """Every file to process, named as it will be in the output, and the files skipped."""
    files: list[InputFile] = []
    skipped: list[Malformed] = []
    out_resolved = out_dir.resolve()
    for given in inputs:
        if not given.exists():
            raise RunInputError(f"{given}: no such file or folder")
        if given.is_file():
            files.append(InputFile(given, given.name, format_for(given)))
            continue
        for path in sorted(p for p in given.rglob("*") if p.is_file()):
            relative = path.relative_to(given)
            if STATE_DIR in relative.parts or out_resolved in path.resolve().parents:
                continue
            try:
                files.append(InputFile(path, relative.as_posix(), format_for(path)))
            except UnsupportedFormatError:
                skipped.append(Malformed(relative.as_posix(), MalformedReason.unsupported_format, "unsupported format"))
    seen: dict[str, Path] = {}
    for item in files:
        if item.name in seen:
            raise RunInputError(f"{item.name}: comes from both {seen[item.name]} and {item.path}; outputs would collide")
        seen[item.name] = item.path
    return files, skipped


def index_patients(files: list[InputFile], database: Path) -> Path | None:
    """The FHIR Patient resources among the inputs, indexed for the readers' known PHI; None
    when no input is FHIR."""
    fhir = [f for f in files if isinstance(f.reader, (FhirNdjsonFormat, FhirJsonFormat))]
    if not fhir:
        return None

    def patients() -> Iterator[dict[str, Any]]:
        for item in fhir:
            reader = patients_in_ndjson if isinstance(item.reader, FhirNdjsonFormat) else patients_in_json
            yield from reader(item.path)

    build_patient_index(database, patients())
    return database
