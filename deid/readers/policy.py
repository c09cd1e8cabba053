"""Applying field policies (:mod:`deid.field_policy`) to values, nested objects and keys of one record.

Keys (JSON object keys, CSV column names) go through :func:`scan_key`: a field name is schema
and usually stays, but a record can name its fields after people too.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from deid.anonymize.operators import AppliedSpan
from deid.field_policy import FieldPolicy, Policy
from deid.file_names import may_carry_phi

if TYPE_CHECKING:
    from deid.readers.base import ReaderContext


_COMPACT_DATE = re.compile(r"(1[89]|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])")
_SCHEMA_KEY = re.compile(r"[a-z][a-z0-9_]*|[a-z]+(?:[A-Z][a-z0-9]*)+")  # snake_case or camelCase field names


class Dropped:
    """Marker for a value whose field is removed from the output."""


DROPPED = Dropped()


def apply_policy(
    value: Any, policy: FieldPolicy, context: ReaderContext, patient: str, path: str
) -> tuple[Any, list[AppliedSpan]]:
    """The value to write (or DROPPED) and what was done to it."""
    if policy.policy is Policy.drop:
        return DROPPED, []
    if policy.policy is Policy.keep or value is None or isinstance(value, bool):
        return value, []
    if isinstance(value, dict | list):
        return _apply_nested(value, policy, context, patient, path)
    text = str(value)
    if policy.policy is Policy.scan:
        if isinstance(value, int | float) and len(text.lstrip("-").split(".")[0]) < 4:
            return value, []  # a count or a measurement: too short to identify, and alone it reads as anything
        scrubbed, applied = context.scrubber.scrub(text, patient, field=path)
        return _same_type(value, scrubbed), applied
    if policy.policy is Policy.shift:
        shifted = _shift(text, context, patient)
        if shifted == text and policy.implied:  # not a date after all: scan it like any other value
            scrubbed, applied = context.scrubber.scrub(text, patient, field=path)
            return _same_type(value, scrubbed), applied
        return _same_type(value, shifted), [AppliedSpan(0, len(text), "DATE", "shift", path)] if shifted != text else []
    anonymizer = context.anonymizer
    if policy.entity_type is not None:
        replaced, operator = anonymizer.surrogate(text, policy.entity_type, patient)
        entity = policy.entity_type
    else:
        replaced, operator, entity = anonymizer.surrogates.identifier(text, "*"), "pseudonymize", "ID"
    return _same_type(value, replaced), [AppliedSpan(0, len(text), entity, operator, path)]


def _same_type(original: Any, replaced: str) -> Any:
    """An unchanged value as it was; a replaced number stays a number when the surrogate is one."""
    if replaced == str(original):
        return original
    if isinstance(original, int) and replaced.lstrip("-").isdigit():
        return int(replaced)
    return replaced


def _shift(text: str, context: ReaderContext, patient: str) -> str:
    """A typed date shifted by the patient's offset; compact ``YYYYMMDD`` (a common export form) too."""
    shifted = context.anonymizer.structured_date(text, patient)
    if shifted != text or not _COMPACT_DATE.fullmatch(text):
        return shifted
    try:
        day = date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return text
    moved = (day + timedelta(days=context.anonymizer.date_offset(patient))).strftime("%Y%m%d")
    return context.anonymizer.surrogates.register(text, moved)


def scan_key(key: str, context: ReaderContext, patient: str, path: str) -> tuple[str, list[AppliedSpan]]:
    """A key scanned like text; one the detector passes, or passes in part, but that is no schema word is coded.

    A key has no sentence around it, so a bare surname ("Hollingsworth-Pryce") can pass the
    detector; a key that is not made of ordinary, clinical or format words (the test file
    names get, :func:`deid.file_names.may_carry_phi`) becomes a keyed, format-preserving code.
    The same goes for what a detection leaves of a key: in ``Vandermeer_Philippa`` the detector
    may see only the surname, and the given name must not survive next to its surrogate.
    """
    policies = context.policies
    if policies.is_clean_key(key):
        return key, []
    if _SCHEMA_KEY.fullmatch(key) and not may_carry_phi(key):
        # A schema word ("ward", "allergies"): alone, without a sentence, the detector may take it for a name.
        policies.remember_clean_key(key)
        return key, []
    replaced, applied = context.scrubber.scrub(key, patient, field=path)
    if applied and not may_carry_phi(_undetected(key, applied)):
        return replaced, applied
    if applied or may_carry_phi(key):
        coded = context.anonymizer.surrogates.identifier(key, "*")
        return coded, [AppliedSpan(0, len(key), "ID", "pseudonymize", path)]
    policies.remember_clean_key(key)
    return key, []


def _undetected(key: str, applied: list[AppliedSpan]) -> str:
    """The key with every detected span blanked out: what the detector let through."""
    chars = list(key)
    for span in applied:
        chars[span.start : span.end] = " " * (span.end - span.start)
    return "".join(chars)


def transform_object(
    record: dict[str, Any], context: ReaderContext, patient: str, prefix: str = "", parent: FieldPolicy | None = None
) -> tuple[dict[str, Any], list[AppliedSpan]]:
    """Every field of an object under its policy, keys scanned where the policy scans."""
    policies = context.policies
    output: dict[str, Any] = {}
    applied: list[AppliedSpan] = []
    for key, value in record.items():
        path = f"{prefix}.{key}" if prefix else key
        policy = policies.for_path(path, key) if parent is None else policies.nested(parent, path, key)
        new, spans = apply_policy(value, policy, context, patient, path)
        if new is DROPPED:
            continue
        out_key = key
        if policy.policy is not Policy.keep:
            out_key, key_spans = scan_key(key, context, patient, path)
            applied.extend(key_spans)
        while out_key in output:  # two keys that became the same surrogate both survive
            out_key += "_"
        output[out_key] = new
        applied.extend(spans)
    return output, applied


def _apply_nested(
    value: dict[str, Any] | list[Any], policy: FieldPolicy, context: ReaderContext, patient: str, path: str
) -> tuple[Any, list[AppliedSpan]]:
    if isinstance(value, dict):
        return transform_object(value, context, patient, path, policy)
    applied: list[AppliedSpan] = []
    items = []
    for item in value:
        new, spans = apply_policy(item, policy, context, patient, path)
        if new is not DROPPED:
            items.append(new)
        applied.extend(spans)
    return items, applied


def record_patient(record: dict[str, Any], context: ReaderContext, fallback: str) -> str:
    """The scope of a record: its patient id field when present, else the whole file."""
    for name in context.config.patient_id_fields:
        value = record.get(name)
        if value not in (None, ""):
            return f"patient:{value}"
    return fallback
