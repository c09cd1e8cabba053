"""De-identify one FHIR R4 resource, whatever its type, by walking its data types.

FHIR reuses a handful of data types everywhere (HumanName, Address, ContactPoint, Identifier,
Reference, Attachment, Coding), so recognising those covers Patient, Encounter, Condition,
Observation, MedicationRequest, Procedure, Immunization, Device, DocumentReference... without
a hand-written rule per resource type. Dates are shifted per patient; resource ids are
pseudonymised corpus-wide so references between files still resolve; free-text fields and
base64 notes are scanned with the patient's own structured PHI as known PHI. Narratives
(``text.div``) are dropped: they restate structured data and are regenerable from it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from deid.anonymize.date_shift import is_fhir_date
from deid.anonymize.operators import CORPUS_SCOPE, AppliedSpan
from deid.detection.entities import Entity
from deid.detection.known_phi import KnownPhi
from deid.readers.base import ReaderContext

PERSON_RESOURCES = frozenset({"Patient", "RelatedPerson", "Person"})
STAFF_RESOURCES = frozenset({"Practitioner"})
FACILITY_RESOURCES = frozenset({"Organization", "Location", "HealthcareService"})
_NAME_FIELDS = frozenset({"name", "alias"})
_FREE_TEXT = frozenset(
    {"text", "valueString", "valueMarkdown", "description", "comment", "conclusion", "patientInstruction",
     "title", "summary", "note", "reasonText", "purpose"}
)
_ID_FIELDS = frozenset(
    {"serialNumber", "lotNumber", "deviceIdentifier", "carrierHRF", "carrierAIDC", "distinctIdentifier",
     "udi", "accessionIdentifier"}
)
_PERSON_STRINGS = frozenset({"authorString", "performerString", "sourceString"})  # Annotation authors, etc.
_DATE_KEYS = frozenset({"start", "end", "issued", "recorded", "authoredOn", "lastUpdated", "created", "timestamp",
                        "date", "birthDate", "occurrence"})
_DROPPED_EXTENSIONS = ("geolocation",)
# Coded demographics whose text values are category names, not identifiers.
_CODED_EXTENSIONS = ("us-core-race", "us-core-ethnicity", "us-core-birthsex", "us-core-genderIdentity")
_STAFF_KEYS = frozenset({"practitioner", "requester", "performer", "author", "individual", "recorder", "asserter",
                         "attester", "actor", "generalPractitioner", "authenticator"})
_FACILITY_KEYS = frozenset({"organization", "location", "managingOrganization", "serviceProvider", "custodian",
                            "provider", "insurer", "partOf", "site"})
_PATIENT_KEYS = frozenset({"subject", "patient", "beneficiary"})
_TYPED_REFERENCE = re.compile(r"(?P<base>.*?)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?P<rest>/_history/.*)?")
_URN_UUID = "urn:uuid:"
_FULL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(T.*)?")
_MAIDEN = "mothersMaidenName"


@dataclass(slots=True)
class _Walk:
    resource_type: str
    patient: str
    known: Sequence[KnownPhi]
    applied: list[AppliedSpan] = field(default_factory=list)


def patient_of(resource: dict[str, Any], is_patient: Any) -> str | None:
    """The source id of the patient a resource belongs to, if any."""
    if resource.get("resourceType") == "Patient":
        return str(resource.get("id", ""))
    for key in ("subject", "patient", "beneficiary"):
        ref = resource.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
            target: str = ref["reference"]
            if target.startswith(_URN_UUID):
                candidate = target[len(_URN_UUID) :]
                if is_patient(candidate) or key == "patient":
                    return candidate
            match = _TYPED_REFERENCE.fullmatch(target)
            if match and match["type"] == "Patient":
                return match["id"]
    return None


def known_phi_of(patient: dict[str, Any]) -> list[KnownPhi]:
    """A Patient resource's own identifying values, for finding them in that patient's notes."""
    found: list[KnownPhi] = []

    def add(value: Any, entity: Entity) -> None:
        if isinstance(value, str) and len(value.strip()) > 1:
            found.append(KnownPhi(value.strip(), entity.value))

    for name in patient.get("name", []) or []:
        given = [g for g in name.get("given", []) or [] if isinstance(g, str)]
        family = name.get("family")
        for part in [*given, family]:
            add(part, Entity.PATIENT)
        if given and isinstance(family, str):
            add(" ".join([*given, family]), Entity.PATIENT)
            add(f"{given[0]} {family}", Entity.PATIENT)
        add(name.get("text"), Entity.PATIENT)
    for identifier in patient.get("identifier", []) or []:
        add(identifier.get("value"), Entity.MRN)
    for contact in patient.get("telecom", []) or []:
        add(contact.get("value"), Entity.EMAIL if contact.get("system") == "email" else Entity.PHONE)
    for address in patient.get("address", []) or []:
        for line in address.get("line", []) or []:
            add(line, Entity.LOCATION)
        for key in ("city", "district", "postalCode"):
            add(address.get(key), Entity.LOCATION)
    add(patient.get("birthDate"), Entity.DATE)
    for extension in patient.get("extension", []) or []:
        if _MAIDEN in str(extension.get("url", "")):
            for part in str(extension.get("valueString", "")).split():
                add(part, Entity.PATIENT)
    return found


class ResourceScrubber:
    """Stateless apart from the reader context; one call per resource."""

    def __init__(self, context: ReaderContext) -> None:
        self._context = context
        self._anonymizer = context.anonymizer

    def scrub(self, resource: dict[str, Any]) -> tuple[dict[str, Any], list[AppliedSpan]]:
        patients = self._context.patients
        patient_id = patient_of(resource, patients.is_patient)
        patient = f"patient:{patient_id}" if patient_id else CORPUS_SCOPE
        known = patients.known_phi(patient_id) if patient_id else ()
        walk = _Walk(str(resource.get("resourceType", "")), patient, known)
        result = self._node(resource, "", "", walk, root=True)
        if walk.resource_type == "Patient":
            self._cap_age(resource, result, walk)
        return result, walk.applied

    def _cap_age(self, original: dict[str, Any], result: dict[str, Any], walk: _Walk) -> None:
        """Safe Harbor: ages over 89 fall into one "90 or older" class, so a birth date that
        reveals such an age becomes the bare year of a 90-year-old at the reference date."""
        birth = original.get("birthDate")
        if not isinstance(birth, str) or not is_fhir_date(birth):
            return
        end = original.get("deceasedDateTime")
        reference = date.fromisoformat(end[:10]) if isinstance(end, str) and _FULL_DATE.fullmatch(end) else date.today()
        born = date(int(birth[:4]), int(birth[5:7] or 1) if len(birth) >= 7 else 1, int(birth[8:10]) if len(birth) >= 10 else 1)
        age = reference.year - born.year - ((reference.month, reference.day) < (born.month, born.day))
        if age > 89:
            result["birthDate"] = f"{reference.year - 90:04d}"
            walk.applied.append(AppliedSpan(0, len(birth), Entity.AGE_OVER_89.value, "age_cap", "birthDate"))

    # ----- generic walk ----------------------------------------------------------------
    def _node(self, node: Any, key: str, path: str, walk: _Walk, root: bool = False) -> Any:
        if isinstance(node, list):
            return [self._node(item, key, f"{path}[{i}]", walk) for i, item in enumerate(node)]
        if isinstance(node, dict):
            return self._dict(node, key, path, walk, root)
        if isinstance(node, str):
            return self._string(node, key, path, walk)
        return node

    def _dict(self, node: dict[str, Any], key: str, path: str, walk: _Walk, root: bool) -> dict[str, Any]:
        if key in _NAME_FIELDS and ("family" in node or "given" in node or ("text" in node and "use" in node)):
            return self._human_name(node, path, walk)
        if key in ("address", "valueAddress"):
            return self._address(node, path, walk)
        if key == "telecom" or (key == "valueContactPoint"):
            return self._contact_point(node, path, walk)
        if "reference" in node or (key in _STAFF_KEYS | _FACILITY_KEYS | _PATIENT_KEYS and "display" in node):
            return self._reference(node, key, path, walk)
        if "contentType" in node and ("data" in node or "url" in node):
            return self._attachment(node, path, walk)
        if "system" in node and "code" in node:
            return node  # a Coding: terminology, not PHI
        if isinstance(node.get("coding"), list) and isinstance(node.get("text"), str) and _is_display(node):
            return node  # a CodeableConcept whose text only repeats its codes' display
        result: dict[str, Any] = {}
        for child_key, value in node.items():
            child_path = f"{path}.{child_key}" if path else child_key
            if root and child_key == "id" and isinstance(value, str):
                result[child_key] = self._anonymizer.surrogates.resource_id(value)
                continue
            if root and child_key == "text" and isinstance(value, dict):
                walk.applied.append(AppliedSpan(0, 0, "NARRATIVE", "drop", child_path))
                continue
            if child_key == "extension" and isinstance(value, list):
                result[child_key] = self._extensions(value, child_path, walk)
                continue
            if child_key == "identifier":
                result[child_key] = self._identifier_part(child_key, value, child_path, walk)
                continue
            if child_key == "position" and walk.resource_type == "Location":
                walk.applied.append(AppliedSpan(0, 0, Entity.LOCATION.value, "drop", child_path))
                continue
            result[child_key] = self._node(value, child_key, child_path, walk)
        return result

    def _string(self, value: str, key: str, path: str, walk: _Walk) -> str:
        anonymizer = self._anonymizer
        if is_fhir_date(value) and (_FULL_DATE.fullmatch(value) or _date_key(key)):
            shifted = anonymizer.structured_date(value, walk.patient)
            walk.applied.append(AppliedSpan(0, len(value), Entity.DATE.value, "shift", path))
            return shifted
        if key in _ID_FIELDS:
            return self._replace(value, Entity.DEVICE.value, path, walk)
        if key in _PERSON_STRINGS:
            return self._replace(value, Entity.CLINICIAN.value, path, walk)
        if key in _NAME_FIELDS and walk.resource_type in FACILITY_RESOURCES:
            return self._replace(value, Entity.HOSPITAL.value, path, walk)
        if key in _FREE_TEXT:
            return self._scan(value, path, walk)
        return value

    def _scan(self, value: str, path: str, walk: _Walk) -> str:
        """Free text: detection with the patient's own PHI as known PHI, then replacement."""
        scrubbed, applied = self._context.scrubber.scrub(value, walk.patient, known_phi=walk.known, field=path)
        walk.applied.extend(applied)
        return scrubbed

    def _replace(self, value: str, entity: str, path: str, walk: _Walk) -> str:
        replaced, operator = self._anonymizer.replace(value, entity, walk.patient)
        walk.applied.append(AppliedSpan(0, len(value), entity, operator, path))
        return replaced

    # ----- data types ------------------------------------------------------------------
    def _person_entity(self, walk: _Walk) -> str:
        return Entity.CLINICIAN.value if walk.resource_type in STAFF_RESOURCES else Entity.PATIENT.value

    def _human_name(self, node: dict[str, Any], path: str, walk: _Walk) -> dict[str, Any]:
        entity = self._person_entity(walk)
        result = dict(node)
        if isinstance(node.get("family"), str):
            result["family"] = self._replace(node["family"], entity, f"{path}.family", walk)
        if isinstance(node.get("given"), list):
            result["given"] = [
                self._replace(g, entity, f"{path}.given[{i}]", walk) if isinstance(g, str) else g
                for i, g in enumerate(node["given"])
            ]
        if isinstance(node.get("text"), str):
            result["text"] = self._replace(node["text"], entity, f"{path}.text", walk)
        if "period" in node:
            result["period"] = self._node(node["period"], "period", f"{path}.period", walk)
        return result

    def _address(self, node: dict[str, Any], path: str, walk: _Walk) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in node.items():
            child = f"{path}.{key}"
            if key == "line" and isinstance(value, list):
                result[key] = [self._replace(v, Entity.LOCATION.value, f"{child}[{i}]", walk) for i, v in enumerate(value)]
            elif key in ("city", "district", "text", "postalCode") and isinstance(value, str):
                result[key] = self._replace(value, Entity.LOCATION.value, child, walk)
            elif key == "extension" and isinstance(value, list):
                result[key] = self._extensions(value, child, walk)
            else:  # state and country are not PHI under Safe Harbor
                result[key] = self._node(value, key, child, walk)
        return result

    def _contact_point(self, node: dict[str, Any], path: str, walk: _Walk) -> dict[str, Any]:
        result = dict(node)
        value = node.get("value")
        if isinstance(value, str):
            system = node.get("system")
            kinds = {"email": Entity.EMAIL, "url": Entity.URL, "fax": Entity.FAX}
            entity = kinds.get(system, Entity.PHONE) if isinstance(system, str) else Entity.PHONE
            result["value"] = self._replace(value, entity.value, f"{path}.value", walk)
        if "period" in node:
            result["period"] = self._node(node["period"], "period", f"{path}.period", walk)
        if "extension" in node:
            result["extension"] = self._extensions(node["extension"], f"{path}.extension", walk)
        return result

    def _identifier_part(self, key: str, value: Any, path: str, walk: _Walk) -> Any:
        """Identifier.value becomes a corpus-wide keyed fake, so conditional references still match."""
        if isinstance(value, list):
            return [self._identifier_part(key, item, f"{path}[{i}]", walk) for i, item in enumerate(value)]
        if not isinstance(value, dict):
            return self._node(value, key, path, walk)
        result: dict[str, Any] = {}
        for child_key, item in value.items():
            if child_key == "value" and isinstance(item, str):
                result[child_key] = (
                    self.rewrite_reference(item)
                    if item.startswith(_URN_UUID)
                    else self._anonymizer.surrogates.identifier(item, CORPUS_SCOPE)
                )
                walk.applied.append(AppliedSpan(0, len(item), Entity.ID.value, "pseudonymize", f"{path}.value"))
            elif child_key == "type":
                result[child_key] = item
            else:
                result[child_key] = self._node(item, child_key, f"{path}.{child_key}", walk)
        return result

    def _extensions(self, extensions: list[Any], path: str, walk: _Walk) -> list[Any]:
        kept = []
        for index, extension in enumerate(extensions):
            child = f"{path}[{index}]"
            url = str(extension.get("url", "")) if isinstance(extension, dict) else ""
            if any(marker in url for marker in _DROPPED_EXTENSIONS):
                walk.applied.append(AppliedSpan(0, 0, Entity.LOCATION.value, "drop", child))
                continue
            if any(marker in url for marker in _CODED_EXTENSIONS):
                kept.append(extension)
                continue
            if _MAIDEN in url and isinstance(extension.get("valueString"), str):
                replaced = dict(extension)
                replaced["valueString"] = self._replace(
                    extension["valueString"], Entity.PATIENT.value, f"{child}.valueString", walk
                )
                kept.append(replaced)
                continue
            kept.append(self._node(extension, "extension", child, walk))
        return kept

    def rewrite_reference(self, target: str) -> str:
        ids = self._anonymizer.surrogates
        if target.startswith(_URN_UUID):
            return _URN_UUID + ids.resource_id(target[len(_URN_UUID) :])
        if target.startswith("#"):
            return target
        if "?" in target:  # conditional reference: Type?identifier=system|value
            head, _, query = target.partition("?")
            params = []
            for param in query.split("&"):
                name, _, value = param.partition("=")
                system, bar, code = value.rpartition("|")
                if name == "identifier" and code:
                    value = f"{system}{bar}{ids.identifier(code, CORPUS_SCOPE)}"
                params.append(f"{name}={value}")
            return f"{head}?{'&'.join(params)}"
        match = _TYPED_REFERENCE.fullmatch(target)
        if match:
            return f"{match['base']}{match['type']}/{ids.resource_id(match['id'])}{match['rest'] or ''}"
        return target  # a bare type name ("Patient" in a POST request) carries no id

    def _reference(self, node: dict[str, Any], key: str, path: str, walk: _Walk) -> dict[str, Any]:
        result: dict[str, Any] = {}
        target = node.get("reference")
        ref_type = ""
        if isinstance(target, str):
            head = target.partition("?")[0] + "/x" if "?" in target else target  # "Type?identifier=..."
            match = _TYPED_REFERENCE.fullmatch(head)
            ref_type = match["type"] if match else ""
            result["reference"] = self.rewrite_reference(target)
            walk.applied.append(AppliedSpan(0, len(target), Entity.ID.value, "pseudonymize", f"{path}.reference"))
        for child_key, value in node.items():
            child = f"{path}.{child_key}"
            if child_key == "reference":
                continue
            if child_key == "display" and isinstance(value, str):
                entity = _display_entity(ref_type, key)
                replaced = self._scan(value, child, walk) if entity is None else self._replace(value, entity, child, walk)
                result[child_key] = replaced
            elif child_key == "identifier":
                result[child_key] = self._identifier_part(child_key, value, child, walk)
            else:
                result[child_key] = self._node(value, child_key, child, walk)
        return result

    def _attachment(self, node: dict[str, Any], path: str, walk: _Walk) -> dict[str, Any]:
        result = dict(node)
        content_type = str(node.get("contentType", ""))
        if isinstance(node.get("data"), str):
            raw = _decode_base64(node["data"])
            charset = _charset(content_type)
            text = None
            if raw is not None and content_type.lower().startswith("text/"):
                try:
                    text = raw.decode(charset)
                except (UnicodeDecodeError, LookupError):
                    text = None
            if text is None:  # cannot be scanned, so it cannot be kept
                del result["data"]
                result.pop("hash", None)
                result.pop("size", None)
                walk.applied.append(AppliedSpan(0, 0, "ATTACHMENT", "drop", f"{path}.data"))
            else:
                data = self._scan(text, f"{path}.data", walk).encode(charset)
                result["data"] = base64.b64encode(data).decode("ascii")
                if "size" in node:
                    result["size"] = len(data)
                if "hash" in node:
                    # FHIR defines Attachment.hash as the SHA-1 of the data
                    result["hash"] = base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")
        if isinstance(node.get("url"), str):
            url = node["url"]
            if _TYPED_REFERENCE.fullmatch(url) or url.startswith(_URN_UUID):
                result["url"] = self.rewrite_reference(url)
            else:
                result["url"] = self._replace(url, Entity.URL.value, f"{path}.url", walk)
        if isinstance(node.get("title"), str):
            result["title"] = self._scan(node["title"], f"{path}.title", walk)
        if isinstance(node.get("creation"), str):
            result["creation"] = self._string(node["creation"], "creation", f"{path}.creation", walk)
        return result


def _is_display(concept: dict[str, Any]) -> bool:
    text = concept["text"].strip().casefold()
    return any(isinstance(c, dict) and str(c.get("display", "")).strip().casefold() == text for c in concept["coding"])


def _date_key(key: str) -> bool:
    return key in _DATE_KEYS or "Date" in key or key.endswith(("Instant", "DateTime", "Period"))


def _display_entity(ref_type: str, key: str) -> str | None:
    if ref_type in PERSON_RESOURCES or (not ref_type and key in _PATIENT_KEYS):
        return Entity.PATIENT.value
    if ref_type in STAFF_RESOURCES or ref_type == "PractitionerRole" or (not ref_type and key in _STAFF_KEYS):
        return Entity.CLINICIAN.value
    if ref_type in FACILITY_RESOURCES or (not ref_type and key in _FACILITY_KEYS):
        return Entity.HOSPITAL.value
    return None


def _decode_base64(data: str) -> bytes | None:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def _charset(content_type: str) -> str:
    match = re.search(r"charset=([\w\-]+)", content_type, re.IGNORECASE)
    return match.group(1) if match else "utf-8"
