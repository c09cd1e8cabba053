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
from enum import StrEnum
from typing import Protocol

from deid.detection.entities import ALL_ENTITIES


class PolicySettings(Protocol):
    """The three settings a policy table is built from (``DeidConfig`` has them)."""

    field_policies: dict[str, str]
    jsonl_text_fields: list[str]
    default_field_policy: str


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
_CLEAN_KEYS = 4096


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
    def from_config(cls, config: PolicySettings) -> FieldPolicies:
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
