"""An on-disk index of each patient's known PHI, built in a first pass over the FHIR inputs.

Notes sit in DocumentReference files that may be read before, after or without the Patient
file, and a hospital export can hold millions of patients, so the index lives in SQLite rather
than in memory. Workers open it read-only.

It holds patients' real names, so it lives only as long as the run, in a private folder of the
appliance home (mode 0700, the file 0600), never in ``/tmp`` nor under the output folder:
:func:`private_index` removes it when the run ends however it ends (normally, by an exception,
at interpreter exit), and sweeps the index a killed run (SIGKILL, power cut) left behind the
next time any run starts. The file name carries the owning process id for that sweep.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import secrets
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from deid.detection.known_phi import KnownPhi
from deid.readers.base import PatientLookup
from deid.readers.fhir_resource import known_phi_of

_CACHE = 256
INDEX_PREFIX = "patients-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_indexes(folder: Path) -> int:
    """Remove the indexes (and SQLite side files) of runs whose process is gone; returns how many."""
    removed = 0
    if not folder.is_dir():
        return removed
    for path in folder.glob(f"{INDEX_PREFIX}*"):
        owner = path.name.removeprefix(INDEX_PREFIX).split("-", 1)[0]
        if owner.isdigit() and not _alive(int(owner)):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _remove_index(database: Path, owner: int) -> None:
    if os.getpid() != owner:  # a forked worker inherits atexit hooks; only the run's process cleans up
        return
    for path in database.parent.glob(f"{database.name}*"):
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def private_index(folder: Path) -> Iterator[Path]:
    """A path for this run's patient index in ``folder`` (made 0700), removed when the run ends."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        folder.chmod(0o700)
    sweep_stale_indexes(folder)
    owner = os.getpid()
    database = folder / f"{INDEX_PREFIX}{owner}-{secrets.token_hex(4)}.sqlite"
    cleanup = functools.partial(_remove_index, database, owner)
    atexit.register(cleanup)
    try:
        yield database
    finally:
        cleanup()
        atexit.unregister(cleanup)


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
    database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = database.with_name(database.name + ".partial")
    tmp.unlink(missing_ok=True)
    # Created 0600 before SQLite opens it: SQLite keeps an existing file's mode (and gives its
    # journal the same), where it would otherwise create one readable by everyone.
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
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
