"""A record that cannot be processed, said one way everywhere: where, a reason code, a fixed detail.

Readers of a run, the run's own input discovery, the gold-file reader and ``deid detect`` all
report bad input with :class:`Malformed`; the run's journal, its summary, the CLI and the
ledger's ``deid.malformed`` entries take it from there. Nothing in it may come from the
record: the reason is a code from :class:`MalformedReason` and the detail is text this code
wrote (a line number or byte offset at most), because a report is printed and logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MalformedReason(StrEnum):
    """Why a record (or a file) was skipped; the value is what the ledger and the journal hold."""

    not_utf8 = "not_utf8"
    invalid_json = "invalid_json"
    not_object = "not_object"
    no_resource_type = "no_resource_type"
    bad_entry = "bad_entry"
    too_large = "too_large"
    invalid_xml = "invalid_xml"
    doctype = "doctype"
    not_cda = "not_cda"
    no_header = "no_header"
    csv_error = "csv_error"
    field_count = "field_count"
    bad_segment = "bad_segment"
    bad_header = "bad_header"
    bad_id = "bad_id"
    bad_text = "bad_text"
    bad_spans = "bad_spans"
    duplicate_id = "duplicate_id"
    unprocessable = "unprocessable"  # the reader raised on it; only the exception's type is kept
    unsupported_format = "unsupported_format"  # a whole file in no format the run reads


@dataclass(frozen=True, slots=True)
class Malformed:
    """One skipped record (or file). ``position`` is what reports show ("name:line", "name#entry.3",
    a file's name); ``line`` is the record's line number where a caller reports by number (a
    gold file, ``deid detect``'s input) and is absent otherwise."""

    position: str
    reason: MalformedReason
    detail: str
    line: int | None = None

    def __post_init__(self) -> None:
        # A code from a reader (or a journal line) outside the vocabulary fails here, not in a report.
        object.__setattr__(self, "reason", MalformedReason(self.reason))

    def as_dict(self) -> dict[str, str]:
        """The form a run's summary lists: the line number is already part of ``position`` there."""
        return {"position": self.position, "reason": self.reason.value, "detail": self.detail}
