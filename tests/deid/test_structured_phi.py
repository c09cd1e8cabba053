"""PHI in structured records and file names: 17 planted values, none survives anywhere a run writes or prints.

Numbers under identifier names, numbers under no telling name, nested objects, list items,
object keys, a CSV and the input's file name, through `appliance deid run` with default
settings; then the output names and bytes, the ledger, the run journal and the printed log are
searched. Also: the names are stable across reruns, and the patient index never outlives a run.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from deid.readers.patients import private_index, sweep_stale_indexes
from tests.deid.test_run import appliance
from tests.support.canaries import surrogates_could_produce

FILE_NAME = "Quackenbush_Zebulon_MRN55120398.jsonl"
IN_FILE_NAME = ("Quackenbush", "Zebulon", "55120398")
IN_JSONL = (
    "219093871", "40417823", "6175550143", "19410302",  # numbers under ssn, mrn, phone, dob
    "Okonkwo-Brandt", "8575550178",  # a nested object: a name and a number
    "Philippa Vandermeer",  # an object key
    "Wrigglesworth", "300512345",  # list items: a name and a number
    "771234567", "Hollingsworth-Pryce",  # deeper nesting: an unlabelled number, a key in a list item
)
IN_CSV = ("Pemberton-Oyelaran", "078051120", "Featherstonehaugh")
PLANTED = (*IN_FILE_NAME, *IN_JSONL, *IN_CSV)


def records() -> list[dict]:
    return [
        {
            "id": "r1",
            "patient_id": "P-1",
            "text": "Follow-up visit, stable.",
            "ssn": 219093871,
            "mrn": 40417823,
            "phone": 6175550143,
            "dob": 19410302,
            "contact": {"name": "Marisol Okonkwo-Brandt", "phone": 8575550178, "relation": "daughter"},
            "allergies": {"Philippa Vandermeer": "allergic"},
            "aliases": ["Thaddeus Wrigglesworth", 300512345],
            "billing": {"history": [{"ref": 771234567}, {"Hollingsworth-Pryce": "guarantor"}]},
            "ward": 3,
        }
    ]


def plant(folder: Path) -> None:
    folder.mkdir()
    (folder / FILE_NAME).write_text("".join(json.dumps(r) + "\n" for r in records()))
    (folder / "visits.csv").write_text(
        "patient_id,patient_name,ssn,note\n"
        "P-2,Ignatius Pemberton-Oyelaran,078051120,Seen with his daughter Rosalind Featherstonehaugh today.\n"
    )


def everything_written(out: Path, home: Path) -> str:
    """Every name and byte under the output (journal and state included), the ledger and the keystore's heads."""
    parts = []
    for path in sorted(out.rglob("*")):
        parts.append(path.relative_to(out).as_posix())
        if path.is_file():
            parts.append(path.read_text(encoding="utf-8", errors="replace"))
    parts.append((home / "ledger" / "deid.jsonl").read_text())
    return "\n".join(parts)


def test_planted_values_can_be_told_from_surrogates() -> None:
    words = [w for value in PLANTED for w in value.split() if not w.isdigit()]
    assert len(PLANTED) == 17 and not [w for w in words if surrogates_could_produce(w)]


def test_no_planted_value_survives_a_run(
    tmp_path: Path, appliance_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in"
    plant(source)
    out = tmp_path / "out"
    code, printed = appliance("deid", "run", str(source), "--out", str(out), monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, printed
    assert "2 files, 2 documents de-identified" in printed
    haystack = (everything_written(out, appliance_home) + "\n" + printed).casefold()
    survived = [value for value in PLANTED if value.casefold() in haystack]
    assert survived == []

    outputs = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert "visits.csv" in outputs and len(outputs) == 2
    (pseudonym,) = [name for name in outputs if name != "visits.csv"]
    assert pseudonym.startswith("f-") and pseudonym.endswith(".jsonl")
    (record,) = [json.loads(line) for line in (out / pseudonym).read_text().splitlines()]
    # the record keeps its shape: numbers stay numbers, the key count and the clean values stay
    assert isinstance(record["ssn"], int) and isinstance(record["mrn"], int) and isinstance(record["phone"], int)
    assert record["ward"] == 3 and record["contact"]["relation"] == "daughter"
    assert len(record["allergies"]) == 1 and list(record["allergies"].values()) == ["allergic"]
    assert str(record["dob"]).isdigit() and len(str(record["dob"])) == 8

    # A rerun into a fresh folder names the file the same way (the pseudonym is keyed, not random).
    again = tmp_path / "again"
    code, printed = appliance("deid", "run", str(source), "--out", str(again), monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, printed
    assert (again / pseudonym).is_file()
    # The patient index of either run is gone.
    assert not list((appliance_home / "scratch").glob("patients-*"))


def test_the_patient_index_is_private_and_never_outlives_its_run(tmp_path: Path) -> None:
    folder = tmp_path / "scratch"
    with pytest.raises(RuntimeError), private_index(folder) as database:
        database.write_text("real names")
        os.chmod(database, 0o600)
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        raise RuntimeError("the run failed")
    assert not database.exists()
    # A killed run's index (its process is gone) is swept at the next start; a live one is not.
    dead = folder / "patients-999999999-abcd.sqlite"
    live = folder / f"patients-{os.getpid()}-beef.sqlite"
    dead.write_text("x")
    live.write_text("y")
    assert sweep_stale_indexes(folder) == 1
    assert not dead.exists() and live.exists()
