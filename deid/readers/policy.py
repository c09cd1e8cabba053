"""Per-field policies for tabular and JSON records: drop, pseudonymize, shift, keep or scan.

Structured exports mix columns that are pure identifiers (an MRN column), typed dates, codes
that must survive untouched, and free text. Scanning everything as prose wastes time and
mangles codes; keeping everything leaks. The policy says per field which treatment applies.

Policies are written ``drop``, ``keep``, ``shift``, ``scan``, ``pseudonymize`` (a keyed,
format-preserving code) or ``pseudonymize:ENTITY`` (a realistic surrogate of that type), and
are keyed by field path: a top-level name (``mrn``) or a dotted path into nested objects
(``contact.phone``; list items take their list's path). They are parsed once per run into
:class:`FieldPolicies`. A policy on a path covers everything under it, except that ``scan``
lets each nested field be judged again by its own name.

Nothing passes untouched unless a policy says ``keep``. Under ``scan`` (the default):

- a field whose name says what it holds (``ssn``, ``mrn``, ``phone``, ``dob``, ``email``,
  ``first_name``...; see :data:`IDENTIFIER_WORDS`) is pseudonymized as that type, or shifted
  for dates, whether its value is a string or a number;
- other strings are scanned as text, and so are numbers (``"ward": 3`` stays 3, an unlabelled
  ``219093871`` is found as an identifier); a replaced integer stays an integer when the
  surrogate is all digits;
- object keys are scanned like text (``{"Philippa Vandermeer": "allergic"}``) and replaced by
  the same surrogate their text would get, so one patient's key is renamed the same way in
  every record; a key the detector passes but that is not made of ordinary words becomes a
  keyed code. Keys found clean are remembered, so a schema's field names are scanned once.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from deid.anonymize.operators import AppliedSpan
from deid.detection.entities import ALL_ENTITIES
from deid.file_names import may_carry_phi

if TYPE_CHECKING:
    from deid.config import DeidConfig
    from deid.readers.base import ReaderContext


class Policy(StrEnum):
    drop = "drop"
    pseudonymize = "pseudonymize"
    shift = "shift"
    keep = "keep"
    scan = "scan"


@dataclass(frozen=True, slots=True)
class FieldPolicy:
    policy: Policy
    entity_type: str | None = None
    implied: bool = False  # chosen from the field's name under ``scan``, not configured


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


# Words of a field name that say what the field holds, and the treatment that implies.
IDENTIFIER_WORDS: dict[str, FieldPolicy] = {
    **dict.fromkeys(("ssn", "social", "sin", "nhs", "nino"), FieldPolicy(Policy.pseudonymize, "SSN", True)),
    **dict.fromkeys(("mrn", "medical_record", "record_number"), FieldPolicy(Policy.pseudonymize, "MRN", True)),
    **dict.fromkeys(
        ("phone", "telephone", "tel", "mobile", "cell", "pager", "contact_number"),
        FieldPolicy(Policy.pseudonymize, "PHONE", True),
    ),
    "fax": FieldPolicy(Policy.pseudonymize, "FAX", True),
    **dict.fromkeys(("email", "email_address"), FieldPolicy(Policy.pseudonymize, "EMAIL", True)),
    **dict.fromkeys(("dob", "birth", "birthdate", "birthday", "born"), FieldPolicy(Policy.shift, None, True)),
    **dict.fromkeys(
        ("firstname", "lastname", "surname", "fullname", "nok", "given_name", "family_name"),
        FieldPolicy(Policy.pseudonymize, "PATIENT", True),
    ),
    **dict.fromkeys(("address", "street", "city", "county"), FieldPolicy(Policy.pseudonymize, "LOCATION", True)),
    # A postal code keeps its shape (a keyed code), not a place name in its stead.
    **dict.fromkeys(("zip", "zipcode", "postcode", "postal", "postal_code"), FieldPolicy(Policy.pseudonymize, None, True)),
    **dict.fromkeys(("account", "acct", "billing"), FieldPolicy(Policy.pseudonymize, "ACCOUNT", True)),
    **dict.fromkeys(("insurance", "member", "policy_number", "beneficiary"), FieldPolicy(Policy.pseudonymize, "HEALTH_PLAN", True)),
    **dict.fromkeys(("license", "licence", "dea", "npi"), FieldPolicy(Policy.pseudonymize, "LICENSE", True)),
    **dict.fromkeys(("vin", "plate"), FieldPolicy(Policy.pseudonymize, "VEHICLE", True)),
    "serial": FieldPolicy(Policy.pseudonymize, "DEVICE", True),
    **dict.fromkeys(("ip", "ipaddress", "ip_address"), FieldPolicy(Policy.pseudonymize, "IP_ADDRESS", True)),
    **dict.fromkeys(("url", "website"), FieldPolicy(Policy.pseudonymize, "URL", True)),
}
_PERSON_NAME = FieldPolicy(Policy.pseudonymize, "PATIENT", True)
# "name" is a person's only after these ("patient_name", "first_name"), or alone; "drug_name" is not.
_NAME_OWNERS = frozenset(
    {"patient", "first", "last", "full", "given", "family", "middle", "maiden", "contact", "kin", "emergency",
     "mother", "father", "guardian", "spouse", "person", "pt", "physician", "doctor", "provider", "clinician"}
)
# Last words that only say "the value of": "phone_number", "mrn_id", "birth_date" name the word before.
_GENERIC_LAST = frozenset({"number", "no", "num", "nr", "id", "value", "date"})
_NAME_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_COMPACT_DATE = re.compile(r"(1[89]|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])")
_CLEAN_KEYS = 4096
_SCHEMA_KEY = re.compile(r"[a-z][a-z0-9_]*|[a-z]+(?:[A-Z][a-z0-9]*)+")  # snake_case or camelCase field names


def implied_policy(name: str) -> FieldPolicy | None:
    """The treatment a field's own name asks for (``patient_phone`` -> PHONE), if any.

    The last word says what a field holds ("phone_type" is not a phone, "chart_note" not a chart
    number), so only the last pair of words, the last word, or the word before a generic last
    word ("phone_number") is looked up.
    """
    words = [word.lower() for word in _NAME_WORD.findall(name)]
    if not words:
        return None
    if words[-1] == "name":
        return _PERSON_NAME if len(words) == 1 or words[-2] in _NAME_OWNERS else None
    candidates = [words[-1]]
    if len(words) > 1:
        candidates.insert(0, f"{words[-2]}_{words[-1]}")
        if words[-1] in _GENERIC_LAST:
            candidates.append(words[-2])
            if len(words) > 2:
                candidates.insert(1, f"{words[-3]}_{words[-2]}")
    for word in candidates:
        if word in IDENTIFIER_WORDS:
            return IDENTIFIER_WORDS[word]
    return None


@dataclass(slots=True)
class FieldPolicies:
    """A run's field policies, parsed once from the settings and looked up per field."""

    by_path: dict[str, FieldPolicy]
    default: FieldPolicy
    _clean_keys: OrderedDict[str, None] = field(default_factory=OrderedDict)

    @classmethod
    def from_config(cls, config: DeidConfig) -> FieldPolicies:
        by_path = {name.lower(): parse_policy(text) for name, text in config.field_policies.items()}
        for name in config.jsonl_text_fields:
            by_path[name.lower()] = FieldPolicy(Policy.scan)
        return cls(by_path, parse_policy(config.default_field_policy))

    def for_path(self, path: str, name: str) -> FieldPolicy:
        """The configured policy of a field, else the one its name implies, else the default."""
        configured = self.by_path.get(path.lower())
        if configured is not None:
            return configured
        if self.default.policy is Policy.scan:
            implied = implied_policy(name)
            if implied is not None:
                return implied
        return self.default

    def nested(self, parent: FieldPolicy, path: str, name: str) -> FieldPolicy:
        """A nested field: covered by its parent's policy unless that is ``scan``."""
        configured = self.by_path.get(path.lower())
        if configured is not None:
            return configured
        if parent.policy is not Policy.scan:
            return parent
        implied = implied_policy(name)
        return implied if implied is not None else parent

    def is_clean_key(self, key: str) -> bool:
        return key in self._clean_keys

    def remember_clean_key(self, key: str) -> None:
        self._clean_keys[key] = None
        if len(self._clean_keys) > _CLEAN_KEYS:
            self._clean_keys.popitem(last=False)


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


def _scan_key(key: str, context: ReaderContext, patient: str, path: str) -> tuple[str, list[AppliedSpan]]:
    """A key scanned like text; one the detector passes but that is no schema word is coded.

    A key has no sentence around it, so a bare surname ("Hollingsworth-Pryce") can pass the
    detector; a key that is not made of ordinary, clinical or format words (the test file
    names get, :func:`deid.file_names.may_carry_phi`) becomes a keyed, format-preserving code.
    """
    policies = context.policies
    if policies.is_clean_key(key):
        return key, []
    if _SCHEMA_KEY.fullmatch(key) and not may_carry_phi(key):
        # A schema word ("ward", "allergies"): alone, without a sentence, the detector may take it for a name.
        policies.remember_clean_key(key)
        return key, []
    replaced, applied = context.scrubber.scrub(key, patient, field=path)
    if applied:
        return replaced, applied
    if may_carry_phi(key):
        coded = context.anonymizer.surrogates.identifier(key, "*")
        return coded, [AppliedSpan(0, len(key), "ID", "pseudonymize", path)]
    policies.remember_clean_key(key)
    return key, []


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
            out_key, key_spans = _scan_key(key, context, patient, path)
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
