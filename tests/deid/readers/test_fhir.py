"""FHIR resources: data types handled wherever they occur, notes scrubbed with the patient's own PHI."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

from deid.anonymize.date_shift import shift_fhir_date
from deid.config import AnonymizationMode, DeidConfig
from deid.readers.base import ReaderContext
from deid.readers.fhir import FhirJsonFormat
from deid.readers.fhir_resource import ResourceScrubber
from deid.readers.patients import PatientIndex, build_patient_index

PATIENT = {
    "resourceType": "Patient",
    "id": "129c6ac7-8d06-89de-ad63-0204a93e76c3",
    "text": {"status": "generated", "div": "<div>Qortimer Zyxwquist</div>"},
    "extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName", "valueString": "Ilsa Vrondhaven"},
        {"url": "http://hl7.org/fhir/StructureDefinition/geolocation", "extension": [{"url": "latitude", "valueDecimal": 38.9}]},
    ],
    "identifier": [{"system": "http://hospital.example.org", "value": "MR-0048291"}],
    "name": [{"use": "official", "family": "Zyxwquist", "given": ["Qortimer"], "prefix": ["Mr."]}],
    "telecom": [{"system": "phone", "value": "555-810-7203"}, {"system": "email", "value": "qz@canary.example"}],
    "birthDate": "1950-05-21",
    "address": [{"line": ["77 Canarywood Lane"], "city": "Olathe", "state": "KS", "postalCode": "66061"}],
}
NOTE = "Mr. Zyxwquist (MRN MR-0048291) seen 2017-03-08 at home, 77 Canarywood Lane. Call 555-810-7203."


def document_reference() -> dict:
    return {
        "resourceType": "DocumentReference",
        "id": "02c8dd96-7db2-a46b-b7c3-b79b9767b70f",
        "subject": {"reference": "urn:uuid:129c6ac7-8d06-89de-ad63-0204a93e76c3"},
        "date": "2017-03-08T10:09:01.500-05:00",
        "author": [{"reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999951293", "display": "Dr. Quentin28 Kertzmann286"}],
        "content": [
            {"attachment": {"contentType": "text/plain; charset=utf-8", "data": base64.b64encode(NOTE.encode()).decode(), "size": len(NOTE)}},
            {"attachment": {"contentType": "application/pdf", "data": base64.b64encode(b"%PDF-1.4 Zyxwquist").decode()}},
        ],
    }


def test_patient_resource(make_context: Callable[..., ReaderContext]) -> None:
    scrubbed, applied = ResourceScrubber(make_context()).scrub(json.loads(json.dumps(PATIENT)))
    dumped = json.dumps(scrubbed)
    for real in (
        "Zyxwquist", "Qortimer", "Vrondhaven", "MR-0048291", "555-810-7203", "qz@canary", "Canarywood", "66061", "Olathe",
        "1950-05-21", "129c6ac7",
    ):
        assert real not in dumped, real
    assert "text" not in scrubbed and "latitude" not in dumped  # narrative and geolocation dropped
    assert scrubbed["name"][0]["prefix"] == ["Mr."] and scrubbed["address"][0]["state"] == "KS"
    assert len(scrubbed["birthDate"]) == 10 and scrubbed["identifier"][0]["value"][:3] == scrubbed["identifier"][0]["value"][:3].upper()
    assert {a.operator for a in applied} >= {"surrogate", "shift", "pseudonymize", "drop"}


def test_bundle_note_uses_known_phi_and_references_stay_consistent(tmp_path: Path, make_context: Callable[..., ReaderContext]) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:" + PATIENT["id"], "resource": PATIENT, "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": "urn:uuid:02c8dd96-7db2-a46b-b7c3-b79b9767b70f", "resource": document_reference()},
            {"fullUrl": "urn:uuid:0000", "request": {"method": "DELETE"}},
        ],
    }
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    index = build_patient_index(tmp_path / "p.sqlite", [PATIENT])
    assert index == 1
    context = make_context(patients=PatientIndex(tmp_path / "p.sqlite"))
    reader = FhirJsonFormat()
    (unit, _, _), = list(reader.units(path, path.name, 0, 0))
    result = reader.transform(unit, context)
    assert [(m.position, m.reason) for m in result.malformed] == [("bundle.json#entry.2", "bad_entry")]
    out = json.loads(result.output)
    patient, doc = out["entry"][0]["resource"], out["entry"][1]["resource"]
    assert out["entry"][0]["fullUrl"] == "urn:uuid:" + patient["id"] and out["entry"][0]["request"]["url"] == "Patient"
    assert doc["subject"]["reference"] == "urn:uuid:" + patient["id"]
    note = base64.b64decode(doc["content"][0]["attachment"]["data"]).decode()
    assert doc["content"][0]["attachment"]["size"] == len(note.encode())
    for real in ("Zyxwquist", "MR-0048291", "Canarywood", "555-810-7203", "2017-03-08"):
        assert real not in note, real
    surname = patient["name"][0]["family"]
    assert f"Mr. {surname}" in note  # the same fake in the structured name and in the note
    assert doc["date"][:10] in note  # the note's date moved with the resource's date
    assert "data" not in doc["content"][1]["attachment"]  # cannot be scanned, so not kept
    assert "Kertzmann" not in json.dumps(doc) and "9999951293" not in json.dumps(doc)
    assert len(result.documents) == 2


def test_birth_date_revealing_an_age_over_89_becomes_a_90_year_old(make_context: Callable[..., ReaderContext]) -> None:
    scrubber = ResourceScrubber(make_context())
    alive = {"resourceType": "Patient", "id": "a", "birthDate": "1927-05-21"}
    died_young = {"resourceType": "Patient", "id": "b", "birthDate": "1927-05-21", "deceasedDateTime": "1989-05-09T20:35:22-04:00"}
    assert scrubber.scrub(alive)[0]["birthDate"] == str(date.today().year - 90)
    shifted = scrubber.scrub(died_young)[0]
    assert len(shifted["birthDate"]) == 10 and shifted["birthDate"] != "1927-05-21"


def test_redact_mode_tags_strings_but_keeps_typed_fields_valid(make_context: Callable[..., ReaderContext]) -> None:
    context = make_context(DeidConfig(mode=AnonymizationMode.redact))
    patient, _ = ResourceScrubber(context).scrub(json.loads(json.dumps(PATIENT)))
    assert patient["name"][0]["family"] == "[NAME]" and patient["address"][0]["line"] == ["[LOCATION]"]
    assert patient["telecom"][1]["value"] == "[EMAIL]"
    assert len(patient["birthDate"]) == 10 and patient["birthDate"] != PATIENT["birthDate"]  # a date type stays a date
    doc, _ = ResourceScrubber(context).scrub(document_reference())
    note = base64.b64decode(doc["content"][0]["attachment"]["data"]).decode()
    assert "[DATE]" in note and "[PHONE]" in note and "555-810-7203" not in note


def test_a_resource_of_unexpected_shape_is_reported_not_fatal(tmp_path: Path, make_context: Callable[..., ReaderContext]) -> None:
    from deid.readers.fhir import FhirNdjsonFormat
    from deid.run.runner import transform_unit

    path = tmp_path / "Patient.ndjson"
    path.write_text(json.dumps({"resourceType": "Patient", "id": "x", "address": [{"line": [{"oops": 1}]}]}) + "\n")
    reader = FhirNdjsonFormat()
    (unit, _, _), = list(reader.units(path, path.name, 0, 0))
    result = transform_unit(reader, unit, make_context())
    assert result.output == b"" and [(m.position, m.reason) for m in result.malformed] == [("Patient.ndjson:1", "unprocessable")]
    assert "oops" not in result.malformed[0].detail


def test_observation_dates_references_and_annotations(make_context: Callable[..., ReaderContext]) -> None:
    observation = {
        "resourceType": "Observation",
        "id": "obs-1",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}], "text": "Heart rate"},
        "subject": {"reference": "Patient/129c6ac7-8d06-89de-ad63-0204a93e76c3", "display": "Qortimer Zyxwquist"},
        "effectiveDateTime": "2017-03-08T10:09:01-05:00",
        "issued": "2017-03-08T10:09:01.500-05:00",
        "performer": [{"reference": "Practitioner/p-77", "display": "Dr. Hazel Schultz"}],
        "valueQuantity": {"value": 88, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
        "note": [{"authorString": "Nurse Ilsa Vrondhaven", "time": "2017-03-08T11:00:00Z", "text": "Called Dr. Hazel Schultz at 617-555-0199."}],
    }
    context = make_context()
    out, _ = ResourceScrubber(context).scrub(observation)
    dumped = json.dumps(out)
    for real in ("Zyxwquist", "Schultz", "Vrondhaven", "617-555-0199", "2017-03-08", "obs-1", "p-77"):
        assert real not in dumped, real
    assert out["code"] == observation["code"] and out["valueQuantity"] == observation["valueQuantity"]
    offset = context.anonymizer.date_offset("patient:129c6ac7-8d06-89de-ad63-0204a93e76c3")
    assert out["effectiveDateTime"] == shift_fhir_date(observation["effectiveDateTime"], offset)
    assert out["note"][0]["time"] == shift_fhir_date("2017-03-08T11:00:00Z", offset)
    assert out["subject"]["reference"] == "Patient/" + context.anonymizer.surrogates.resource_id("129c6ac7-8d06-89de-ad63-0204a93e76c3")
