"""An on-disk index of each patient's known PHI, built in a first pass over the FHIR inputs.

Notes sit in DocumentReference files that may be read before, after or without the Patient
file, and a hospital export can hold millions of patients, so the index lives in SQLite next
to the run's journal rather than in memory. Workers open it read-only.
"""

from __future__ import annotations

import json
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from deid.detection.known_phi import KnownPhi
from deid.readers.base import PatientLookup
from deid.readers.fhir_resource import known_phi_of

_CACHE = 256


def patients_in_ndjson(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as handle:
        for raw in handle:
            if b'"Patient"' not in raw:
                continue
            try:
                resource = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue  # reported with its position by the main pass
            if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
                yield resource


def patients_in_json(path: Path) -> Iterator[dict[str, Any]]:
    try:
        document = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return
    if not isinstance(document, dict):
        return
    if document.get("resourceType") == "Patient":
        yield document
    for entry in document.get("entry", []) or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
            yield resource


def build_patient_index(database: Path, patients: Iterable[dict[str, Any]]) -> int:
    """Write the index afresh; returns how many patients it holds."""
    database.parent.mkdir(parents=True, exist_ok=True)
    tmp = database.with_name(database.name + ".partial")
    tmp.unlink(missing_ok=True)
    count = 0
    with sqlite3.connect(tmp) as connection:
        connection.execute("CREATE TABLE patient (id TEXT PRIMARY KEY, known TEXT NOT NULL)")
        # Patient.identifier values (MRNs), so an HL7 v2 message or a C-CDA document that names
        # the patient by MRN finds the same patient, surrogates and date shift.
        connection.execute("CREATE TABLE identifier (value TEXT PRIMARY KEY, id TEXT NOT NULL)")
        for resource in patients:
            try:
                known = [[item.text, item.entity_type] for item in known_phi_of(resource)]
                identifiers = [i["value"] for i in resource.get("identifier", []) or [] if isinstance(i.get("value"), str)]
            except (AttributeError, TypeError):
                continue  # a malformed Patient; the main pass reports it with its position
            connection.execute(
                "INSERT OR REPLACE INTO patient VALUES (?, ?)", (str(resource.get("id", "")), json.dumps(known))
            )
            connection.executemany(
                "INSERT OR IGNORE INTO identifier VALUES (?, ?)", [(value, str(resource.get("id", ""))) for value in identifiers]
            )
            count += 1
    connection.close()
    tmp.replace(database)
    return count


class PatientIndex(PatientLookup):
    def __init__(self, database: Path) -> None:
        self._connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, check_same_thread=False)
        self._cache: OrderedDict[str, tuple[KnownPhi, ...] | None] = OrderedDict()

    def _lookup(self, patient_id: str) -> tuple[KnownPhi, ...] | None:
        if patient_id in self._cache:
            self._cache.move_to_end(patient_id)
            return self._cache[patient_id]
        row = self._connection.execute("SELECT known FROM patient WHERE id = ?", (patient_id,)).fetchone()
        value = None if row is None else tuple(KnownPhi(text, entity) for text, entity in json.loads(row[0]))
        self._cache[patient_id] = value
        if len(self._cache) > _CACHE:
            self._cache.popitem(last=False)
        return value

    def known_phi(self, patient_id: str) -> Sequence[KnownPhi]:
        return self._lookup(patient_id) or ()

    def is_patient(self, resource_id: str) -> bool:
        return self._lookup(resource_id) is not None

    def patient_with_identifier(self, value: str) -> str | None:
        """The id of the FHIR Patient one of whose identifiers is ``value`` (an MRN), if any."""
        row = self._connection.execute("SELECT id FROM identifier WHERE value = ?", (value,)).fetchone()
        return None if row is None else str(row[0])
