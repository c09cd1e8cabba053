"""Per-field policies for tabular and JSON records: drop, pseudonymize, shift, keep or scan.

Structured exports mix columns that are pure identifiers (an MRN column), typed dates, codes
that must survive untouched, and free text. Scanning everything as prose wastes time and
mangles codes; keeping everything leaks. The policy says per column which treatment applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from deid.anonymize.operators import AppliedSpan
from deid.config import DeidConfig
from deid.detection.entities import ALL_ENTITIES
from deid.readers.base import ReaderContext


class Policy(str, Enum):
    drop = "drop"
    pseudonymize = "pseudonymize"
    shift = "shift"
    keep = "keep"
    scan = "scan"


@dataclass(frozen=True, slots=True)
class FieldPolicy:
    policy: Policy
    entity_type: str | None = None


def parse_policy(text: str) -> FieldPolicy:
    """``"pseudonymize:PATIENT"`` -> realistic name surrogate; plain ``"pseudonymize"`` -> keyed code."""
    name, _, entity = text.strip().partition(":")
    try:
        policy = Policy(name.lower())
    except ValueError:
        raise ValueError(f"unknown field policy {name!r}; use one of {', '.join(p.value for p in Policy)}") from None
    if entity and (policy is not Policy.pseudonymize or entity.upper() not in ALL_ENTITIES):
        raise ValueError(f"field policy {text!r}: only pseudonymize takes an entity type, one of {', '.join(ALL_ENTITIES)}")
    return FieldPolicy(policy, entity.upper() or None)


def policy_for(field: str, config: DeidConfig) -> FieldPolicy:
    if field in config.jsonl_text_fields:
        return FieldPolicy(Policy.scan)
    lowered = {name.lower(): value for name, value in config.field_policies.items()}
    return parse_policy(lowered.get(field.lower(), config.default_field_policy))


class Dropped:
    """Marker for a value whose field is removed from the output."""


DROPPED = Dropped()


def apply_policy(
    value: Any, policy: FieldPolicy, context: ReaderContext, patient: str, field: str
) -> tuple[Any, list[AppliedSpan]]:
    """The value to write (or DROPPED) and what was done to it."""
    if policy.policy is Policy.drop:
        return DROPPED, []
    if policy.policy is Policy.keep or value is None or isinstance(value, bool):
        return value, []
    if isinstance(value, (dict, list)):
        return _apply_nested(value, policy, context, patient, field)
    text = str(value)
    anonymizer = context.anonymizer
    if policy.policy is Policy.scan:
        if not isinstance(value, str):
            return value, []
        return context.scrubber.scrub(text, patient, field=field)
    if policy.policy is Policy.shift:
        shifted = anonymizer.structured_date(text, patient)
        return shifted, [AppliedSpan(0, len(text), "DATE", "shift", field)] if shifted != text else []
    if policy.entity_type is not None:
        replaced, operator = anonymizer.surrogate(text, policy.entity_type, patient)
        entity = policy.entity_type
    else:
        replaced, operator, entity = anonymizer.surrogates.identifier(text, "*"), "pseudonymize", "ID"
    if isinstance(value, int) and replaced.lstrip("-").isdigit():
        return int(replaced), [AppliedSpan(0, len(text), entity, operator, field)]
    return replaced, [AppliedSpan(0, len(text), entity, operator, field)]


def _apply_nested(
    value: dict[str, Any] | list[Any], policy: FieldPolicy, context: ReaderContext, patient: str, field: str
) -> tuple[Any, list[AppliedSpan]]:
    applied: list[AppliedSpan] = []
    if isinstance(value, list):
        items = []
        for index, item in enumerate(value):
            new, spans = apply_policy(item, policy, context, patient, f"{field}[{index}]")
            items.append(new)
            applied.extend(spans)
        return items, applied
    result = {}
    for key, item in value.items():
        new, spans = apply_policy(item, policy, context, patient, f"{field}.{key}")
        result[key] = new
        applied.extend(spans)
    return result, applied


def record_patient(record: dict[str, Any], context: ReaderContext, fallback: str) -> str:
    """The scope of a record: its patient id field when present, else the whole file."""
    for name in context.config.patient_id_fields:
        value = record.get(name)
        if value not in (None, ""):
            return f"patient:{value}"
    return fallback
