"""Reading a hand-annotated gold file: ``{"id", "text", "spans": [{"start", "end", "label", "text"?}]}`` per line.

Any label vocabulary is accepted (the PhysioNet gold's ``HCPName``, a hospital's own); labels
are reduced to entity-type form (``HCP_NAME``) for reports and the ledger. A bad line is
reported by its number and a fixed reason (:class:`deid.malformed.Malformed`), never by its
content, and the other lines are still scored; the file is read line by line, so memory does not
grow with it.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from deid.evaluation.scoring import GoldSpan
from deid.malformed import Malformed, MalformedReason

NOT_TYPE_CHARACTER = re.compile(r"[^A-Z0-9]+")
CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
MAX_LABEL = 40


@dataclass(frozen=True, slots=True)
class GoldDocument:
    line: int
    id: str
    text: str
    spans: tuple[GoldSpan, ...]


def label_type(label: str) -> str:
    """A label in entity-type form: ``HCPName`` -> ``HCP_NAME``, ``date of birth`` -> ``DATE_OF_BIRTH``."""
    ascii_only = unicodedata.normalize("NFKD", label.strip()).encode("ascii", "ignore").decode("ascii")
    spaced = CAMEL_BOUNDARY.sub("_", ascii_only)
    name = NOT_TYPE_CHARACTER.sub("_", spaced.upper()).strip("_")[:MAX_LABEL].rstrip("_")
    if not name:
        return "UNLABELLED"
    return name if name[0].isalpha() else f"L_{name}"[:MAX_LABEL]


def _spans(value: object, text: str) -> tuple[GoldSpan, ...] | str:
    if not isinstance(value, list):
        return "spans is not a list"
    spans = []
    for number, span in enumerate(value, start=1):
        if not isinstance(span, dict):
            return f"span {number} is not an object"
        start, end, label = span.get("start"), span.get("end"), span.get("label")
        if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or isinstance(end, bool):
            return f"span {number}: start and end must be integers"
        if not 0 <= start < end <= len(text):
            return f"span {number}: offsets outside the text or empty"
        if not isinstance(label, str) or not label.strip():
            return f"span {number}: label must be a non-empty string"
        if "text" in span and span["text"] != text[start:end]:
            return f"span {number}: its text does not match its offsets"
        spans.append(GoldSpan(start, end, label_type(label)))
    return tuple(spans)


def _malformed(path: Path, number: int, reason: MalformedReason, detail: str) -> Malformed:
    return Malformed(f"{path.name}:{number}", reason, detail, line=number)


def read_gold(path: Path) -> Iterator[GoldDocument | Malformed]:
    """Each non-blank line of ``path`` as a document or as the reason it cannot be scored."""
    seen: set[str] = set()
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            bad = partial(_malformed, path, number)
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield bad(MalformedReason.not_utf8, "not UTF-8")
                continue
            except json.JSONDecodeError:
                yield bad(MalformedReason.invalid_json, "invalid JSON")
                continue
            if not isinstance(record, dict):
                yield bad(MalformedReason.not_object, "not a JSON object")
                continue
            identifier, text = record.get("id"), record.get("text")
            if isinstance(identifier, bool) or not isinstance(identifier, str | int) or str(identifier) == "":
                yield bad(MalformedReason.bad_id, "id must be a non-empty string or an integer")
                continue
            if not isinstance(text, str):
                yield bad(MalformedReason.bad_text, "text must be a string")
                continue
            spans = _spans(record.get("spans", []), text)
            if isinstance(spans, str):
                yield bad(MalformedReason.bad_spans, spans)
                continue
            if str(identifier) in seen:
                yield bad(MalformedReason.duplicate_id, "duplicate id")
                continue
            seen.add(str(identifier))
            yield GoldDocument(number, str(identifier), text, spans)
