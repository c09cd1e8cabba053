"""What a ledger payload may contain, checked before anything is written.

The ledger is read by auditors who must never see PHI, so payloads are typed by
construction rather than scrubbed after the fact: every key must be known (by name or by a
naming convention that fixes its type), and every string must match a narrow pattern (hex
hashes, identifiers without spaces, entity type names, version strings, short file names).
A sentence of record text matches none of them; a value that does not fit is refused with an
error naming only the key, never the value.

Conventions for keys that other components add:
``*_sha256`` / ``*_hash``: 64 hex digits. ``*_id``: identifier (letters, digits, ``_-.:``,
at most 64). ``*_version``: version string. ``*_count`` / ``*_tokens`` / ``*_ms`` /
``*_bytes`` / ``*_seconds``: non-negative number. ``*_counts``: {ENTITY_TYPE: int}.
``*_types``: [ENTITY_TYPE]. ``*_ids``: [identifier].
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from typing import Any

from deid.errors import LedgerError

HEX64 = re.compile(r"[0-9a-f]{64}")
IDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
ENTITY_TYPE = re.compile(r"[A-Z][A-Z0-9_]{0,39}")
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
TOKEN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
ENDPOINT = re.compile(r"/[A-Za-z0-9/_.{}-]{0,63}")  # a route, path parameters as {name}
# A file name only (no directory), at most 128 characters, no spaces.
FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}")
ACTION = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
ACTOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}")
KEY_NAME = re.compile(r"[a-z][a-z0-9_]{0,47}")
MAX_LIST = 100_000
SPAN_KEYS = frozenset({"start", "end", "entity_type", "operator"})


class LedgerPayloadError(LedgerError):
    """A payload carried a key or value that the ledger does not accept (possible PHI)."""



def _where(key: str) -> str:
    return key if KEY_NAME.fullmatch(key) else "a key that is not a plain name"


def _string(pattern: re.Pattern[str], what: str) -> Callable[[str, Any], None]:
    def check(key: str, value: Any) -> None:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise LedgerPayloadError(f"payload field {_where(key)} must be {what}")

    return check


def _number(key: str, value: Any) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    if not ok:
        raise LedgerPayloadError(f"payload field {_where(key)} must be a non-negative number")


def _integer(key: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise LedgerPayloadError(f"payload field {_where(key)} must be a non-negative integer")


def _flag(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise LedgerPayloadError(f"payload field {_where(key)} must be true or false")


def _status(key: str, value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1000:
        return
    _string(TOKEN, "an HTTP status code or a short lower-case word")(key, value)


def _counts(key: str, value: Any) -> None:
    if not isinstance(value, dict) or len(value) > 200:
        raise LedgerPayloadError(f"payload field {_where(key)} must map entity types to counts")
    for name, count in value.items():
        if not isinstance(name, str) or not ENTITY_TYPE.fullmatch(name):
            raise LedgerPayloadError(f"payload field {_where(key)} has a key that is not an entity type")
        _integer(key, count)


def _list_of(pattern: re.Pattern[str], what: str) -> Callable[[str, Any], None]:
    def check(key: str, value: Any) -> None:
        if not isinstance(value, list) or len(value) > MAX_LIST:
            raise LedgerPayloadError(f"payload field {_where(key)} must be a list of {what}")
        for item in value:
            if not isinstance(item, str) or not pattern.fullmatch(item):
                raise LedgerPayloadError(f"payload field {_where(key)} must be a list of {what}")

    return check


_entity_type = _string(ENTITY_TYPE, "an entity type")
MAX_METRIC_KEYS = 200
METRIC_DEPTH = 4


def _metrics(key: str, value: Any, depth: int = 0) -> None:
    """Nested figures (an accuracy evaluation): keys are metric names or entity types, leaves
    are non-negative numbers or null. No string value can appear, so no text can."""
    if not isinstance(value, dict) or len(value) > MAX_METRIC_KEYS or depth >= METRIC_DEPTH:
        raise LedgerPayloadError(f"payload field {_where(key)} must be an object of metrics")
    for name, item in value.items():
        if not isinstance(name, str) or not (KEY_NAME.fullmatch(name) or ENTITY_TYPE.fullmatch(name)):
            raise LedgerPayloadError(f"payload field {_where(key)} has a key that is not a metric name or entity type")
        if isinstance(item, dict):
            _metrics(key, item, depth + 1)
        elif item is not None:
            _number(key, item)
_operator = _string(TOKEN, "an operator name")


def _spans(key: str, value: Any) -> None:
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise LedgerPayloadError(f"payload field {_where(key)} must be a list of spans")
    for span in value:
        if not isinstance(span, dict) or set(span) != SPAN_KEYS:
            raise LedgerPayloadError(
                f"payload field {_where(key)}: each span has exactly start, end, entity_type and operator"
            )
        _integer(key, span["start"])
        _integer(key, span["end"])
        if span["end"] < span["start"]:
            raise LedgerPayloadError(f"payload field {_where(key)}: a span ends before it starts")
        _entity_type(key, span["entity_type"])
        _operator(key, span["operator"])


# Known keys whose type does not follow from a suffix.
EXACT_FIELDS: dict[str, Callable[[str, Any], None]] = {
    "document_id": _string(HEX64, "a keyed hash (64 hex digits)"),
    "source": _string(FILE_NAME, "a file name without directory or spaces"),
    "format": _string(TOKEN, "a format name"),
    "spans": _spans,
    "entity_counts": _counts,
    "evaluation": _metrics,
    "phi_types": _list_of(ENTITY_TYPE, "entity types"),
    "role": _string(TOKEN, "a role name"),
    "endpoint": _string(ENDPOINT, "an API path"),
    "status": _status,
    "operator": _string(TOKEN, "an operator name"),
    "mode": _string(TOKEN, "a mode name"),
    "stage": _string(TOKEN, "a stage name"),
    "reason": _string(TOKEN, "a reason code"),
    "kind": _string(TOKEN, "a kind name"),
    "method": _string(TOKEN, "a method name"),
    "entity_type": _entity_type,
    "documents": _integer,
    "records": _integer,
    "entries": _integer,
    "seq": _integer,
    "covers_seq": _integer,
    "start": _integer,
    "end": _integer,
    "signature": _string(re.compile(r"[0-9a-f]{128}"), "an Ed25519 signature in hex"),
    "dry_run": _flag,
    "unchanged": _flag,
    "granted": _flag,
}

SUFFIX_FIELDS: tuple[tuple[str, Callable[[str, Any], None]], ...] = (
    ("_sha256", _string(HEX64, "a sha256 (64 hex digits)")),
    ("_hash", _string(HEX64, "a hash (64 hex digits)")),
    ("_ids", _list_of(IDENT, "identifiers")),
    ("_id", _string(IDENT, "an identifier without spaces (at most 64 characters)")),
    ("_version", _string(VERSION, "a version string")),
    ("_counts", _counts),
    ("_types", _list_of(ENTITY_TYPE, "entity types")),
    ("_count", _integer),
    ("_tokens", _integer),
    ("_bytes", _integer),
    ("_ms", _number),
    ("_seconds", _number),
)


@functools.lru_cache(maxsize=256)
def _checker(key: str) -> Callable[[str, Any], None] | None:
    if key in EXACT_FIELDS:
        return EXACT_FIELDS[key]
    for suffix, check in SUFFIX_FIELDS:
        if key.endswith(suffix):
            return check
    return None


def validate_payload(payload: Any) -> None:
    """Refuse anything that could carry record text; see the module docstring for the rules."""
    if not isinstance(payload, dict):
        raise LedgerPayloadError("a ledger payload must be a JSON object")
    for key, value in payload.items():
        if not isinstance(key, str) or not KEY_NAME.fullmatch(key):
            raise LedgerPayloadError("payload keys must be lower-case names (letters, digits, '_')")
        check = _checker(key)
        if check is None:
            # The key itself is not echoed: an unknown key may have been built from record data.
            raise LedgerPayloadError("payload has a field that is not a known ledger field (see deid.ledger.payload)")
        check(key, value)


def validate_action(action: Any) -> None:
    if not isinstance(action, str) or not ACTION.fullmatch(action):
        raise LedgerPayloadError("ledger action must be a short lower-case name")


def validate_actor(actor: Any) -> None:
    if not isinstance(actor, str) or not ACTOR.fullmatch(actor):
        raise LedgerPayloadError("ledger actor must be an identifier without spaces (at most 64 characters)")
