"""HL7 v2: the wire format kept exactly, identity replaced by position, prose read as one text."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.cli import main as cli_main
from appliance.dataset.sources import read_corpus
from deid.config import DeidConfig
from deid.detection.engine import PhiDetector
from deid.detection.known_phi import KnownPhi
from deid.keystore import Keystore
from deid.ledger.config import LedgerConfig
from deid.readers.base import ReaderContext, UnitResult
from deid.readers.ccda import CcdaFormat
from deid.readers.formats import format_for
from deid.readers.hl7_text import scrub_pieces
from deid.readers.hl7v2 import Hl7v2Format
from deid.readers.hl7v2_message import Delimiters, Segment, escape, shift_ts, unescape
from deid.run.runner import RunSummary, deidentify

# Canaries no surrogate pool holds, so finding one in an output is a leak, never chance.
ADT = (
    "MSH|^~\\&|ADT1|Qorvath Memorial^2.16.840.1.113883.19.1^ISO|LAB|Zyxwell Clinic|20210302083000-0500||ADT^A01|MSG00017|P|2.5.1\r"
    "EVN|A01|20210302083000\r"
    "PID|1||MR-0048291^^^QMH^MR~123-45-6789^^^SSA^SS||Zyxwquist^Qortimer^J||19500521|M|||77 Canarywood Lane^^Olathe^KS^66061^USA"
    "||(913)555-0147^PRN^PH~^NET^Internet^qz@canary.example|||||ACCT-99417|123-45-6789\r\n"
    "NK1|1|Vrondhaven^Ilsa|SPO^Spouse|77 Canarywood Lane^^Olathe^KS^66061|(913)555-0148\r"
    "PV1|1|I|4W^401^B^Qorvath Memorial||||0042^Brightwater^Haldane^^^Dr|||MED|||||||||V-20210302-7\r"
    "OBX|1|TX|11506-3^Progress note^LN||Seen today with his wife; plan reviewed by Dr.||||||F|||20210302\r"
    "OBX|2|TX|11506-3^Progress note^LN||Brightwater \\T\\ team. Wife Ilsa asks about 03/09/2021 \\F\\ follow-up.||||||F\r"
    "OBX|3|NM|8867-4^Heart rate^LN||72|/min|||||F\r"
    "NTE|1||Patient Zyxwquist, MRN MR-0048291, call (913)555-0147.\r"
)
CANARIES = ("Zyxwquist", "Qortimer", "Vrondhaven", "Ilsa", "Canarywood", "Olathe", "66061", "MR-0048291", "123-45-6789",
            "555-0147", "555-0148", "qz@canary", "ACCT-99417", "Brightwater", "Haldane", "Qorvath", "Zyxwell", "V-20210302-7",
            "19500521", "20210302", "03/09/2021")


def transform(path: Path, context: ReaderContext) -> list[UnitResult]:
    reader = format_for(path)
    assert isinstance(reader, Hl7v2Format)
    return [reader.transform(unit, context) for unit, _, _ in reader.units(path, path.name, 0, 0)]


def test_delimiters_escapes_and_untouched_leaves_round_trip() -> None:
    d = Delimiters.from_header("MSH#$*!@#APP")
    assert (d.field, d.component, d.repetition, d.escape, d.subcomponent) == ("#", "$", "*", "!", "@")
    assert Delimiters.from_header("MSH|^~\\\\&|X").subcomponent == "&"  # a doubled escape, as some exporters write it
    with pytest.raises(ValueError):
        Delimiters.from_header("MSH|^^\\&|X")
    plain = Delimiters()
    raw = "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\X41C3A9\\\\.br\\g\\H\\bold\\N\\ \\Zsite\\ \\r"
    text = unescape(raw, plain)
    assert text == "a|b^c&d~e\\fAé\ng\\H\\bold\\N\\ \\Zsite\\ \\r"
    assert unescape(escape(text, plain), plain) == text
    assert escape("x|y^z&w~v\\q", plain) == "x\\F\\y\\S\\z\\T\\w\\R\\v\\E\\q"
    line = "PID|1||A^B&C~D^^E\\S\\||"
    segment = Segment.parse(line, "\r", 1, plain)
    assert segment.render() == line
    assert segment.text((3, 1, 2, 2)) == "C" and segment.text((3, 2, 3, 1)) == "E^" and segment.text((9, 1, 1, 1)) == ""
    header = "MSH|^~\\&|APP|FAC|||20210302||ADT^A01|1|P|2.5"
    assert Segment.parse(header, "\n", 1, plain).render() == header


def test_hl7_timestamps_keep_their_precision() -> None:
    assert shift_ts("20210302083000.1234-0500", 10) == "20210312083000.1234-0500"
    assert shift_ts("202103", -40)[:4] == "2021" and len(shift_ts("202103", -40)) == 6
    assert shift_ts("1950", 5) in ("1950", "1951")
    assert shift_ts("20210230", 1) is None and shift_ts("ABC", 1) is None


def test_message_identity_replaced_and_structure_kept(tmp_path: Path, make_context: Callable[..., ReaderContext]) -> None:
    path = tmp_path / "adt.hl7"
    path.write_bytes(ADT.encode())
    (result,) = transform(path, make_context())
    assert not result.malformed
    out = result.output.decode()
    for canary in CANARIES:
        assert canary not in out, canary
    before, after = re.split(r"(?<=\r\n)|(?<=\r)(?!\n)", ADT), re.split(r"(?<=\r\n)|(?<=\r)(?!\n)", out)
    assert [line[:3] for line in after] == [line[:3] for line in before]
    assert [line[-2:] == "\r\n" for line in after] == [line[-2:] == "\r\n" for line in before]  # each line's own ending
    segments = {line[:3]: line.rstrip("\r\n").split("|") for line in after if line}
    msh, pid, pv1 = segments["MSH"], segments["PID"], segments["PV1"]
    assert msh[1] == "^~\\&" and msh[2] == "ADT1" and msh[8] == "ADT^A01"  # MSH-2, MSH-3, MSH-9 untouched
    assert msh[3].split("^")[1:] == ["2.16.840.1.113883.19.1", "ISO"]  # the OID of the facility is kept
    assert re.fullmatch(r"\d{14}-0500", msh[6]) and msh[6] != "20210302083000-0500"
    assert re.fullmatch(r"\d{8}", pid[7]) and pid[7] != "19500521"  # 70 at the message's date: shifted, not capped
    assert pid[8] == "M" and pid[11].split("^")[3] == "KS" and pid[11].split("^")[5] == "USA"
    assert re.fullmatch(r"\d{5}", pid[11].split("^")[4]) and pid[11].split("^")[4] != "66061"  # a postal code keeps its shape
    mrn, ssn = pid[3].split("~")
    assert mrn.split("^")[4] == "MR" and ssn.split("^")[4] == "SS" and re.fullmatch(r"\d{3}-\d{2}-\d{4}", ssn.split("^")[0])
    assert pid[13].split("~")[1].split("^")[1:3] == ["NET", "Internet"] and "@" in pid[13].split("~")[1].split("^")[3]
    assert pv1[3].split("^")[:3] == ["4W", "401", "B"]
    assert pv1[7].split("^")[5] == "Dr"
    obx = [line.split("|") for line in out.split("\r") if line.startswith("OBX")]
    assert obx[0][3] == "11506-3^Progress note^LN" and obx[2][5] == "72"
    assert "\\T\\ team" in obx[1][5] and "\\F\\ follow-up" in obx[1][5]  # escapes survive the scan
    # the MRN the note quotes is the same fake as PID-3: known PHI, replaced by the same keyed identifier
    fake_mrn = mrn.split("^")[0]
    assert fake_mrn in segments["NTE"][3]
    (document,) = result.documents
    assert {span.entity_type for span in document.applied} >= {"PATIENT", "CLINICIAN", "MRN", "SSN", "LOCATION", "PHONE", "DATE"}


def test_a_span_across_two_pieces_is_replaced_once(make_context: Callable[..., ReaderContext]) -> None:
    texts = ["Lives at 77 Canarywood", "Lane since 2019.", ""]
    known = [KnownPhi("77 Canarywood\nLane", "LOCATION")]
    out, applied = scrub_pieces(make_context(), texts, ["\n", "\n"], "patient:x", known, "text")
    assert len(out) == 3 and "Canarywood" not in "".join(out)
    assert out[0].startswith("Lives at ") and out[1] == " since 2019." and out[2] == ""
    assert any(span.entity_type == "LOCATION" and span.end - span.start == len(known[0].text) for span in applied)


def test_mllp_batch_file_streams_one_unit_per_message_and_resumes(tmp_path: Path, make_context: Callable[..., ReaderContext]) -> None:
    message = ADT.replace("\r\n", "\r")
    body = (
        "FHS|^~\\&|ADT1|Qorvath Memorial|||20210302||export-Zyxwquist.hl7\r"
        "BHS|^~\\&|ADT1|Qorvath Memorial|||20210302\r"
        + "".join(f"\x0b{message.replace('MSG00017', f'MSG{i}')}\x1c\r" for i in range(3))
        + "BTS|3\rFTS|1\r"
    )
    path = tmp_path / "batch.txt"  # sniffed: a text suffix that starts with a header segment
    path.write_bytes(body.encode())
    reader = format_for(path)
    units = list(reader.units(path, path.name, 0, 0))
    assert [unit.position for unit, _, _ in units] == ["batch.txt:1", "batch.txt:2", "batch.txt:3", "batch.txt:13",
                                                       "batch.txt:23", "batch.txt:33", "batch.txt:34"]
    (_, third_offset, third_line) = units[2]
    resumed = list(reader.units(path, path.name, third_offset, third_line))
    assert [unit.position for unit, _, _ in resumed] == [unit.position for unit, _, _ in units[3:]]
    context = make_context()
    results = [reader.transform(unit, context) for unit, _, _ in units]
    out = b"".join(result.output for result in results).decode()
    assert out.count("\x0bMSH|") == 3 and out.count("\x1c\r") == 3 and out.endswith("BTS|3\rFTS|1\r")
    assert "Zyxwquist" not in out and "Qorvath" not in out
    assert sum(len(result.documents) for result in results) == 7


def test_malformed_messages_are_reported_by_line(tmp_path: Path, make_context: Callable[..., ReaderContext]) -> None:
    path = tmp_path / "bad.hl7"
    path.write_bytes(b"garbage Zyxwquist\rPID|1\r" + ADT.encode() + ADT.replace("NK1|", "nk1 Zyxwquist|").encode())
    results = transform(path, make_context())
    malformed = [problem for result in results for problem in result.malformed]
    assert [(m.position, m.reason) for m in malformed] == [("bad.hl7:1", "bad_segment"), ("bad.hl7:15", "bad_segment")]
    assert all("Zyxwquist" not in m.detail for m in malformed)
    assert len([result for result in results if result.documents]) == 1


CCD = """<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <id root="2.16.840.1.113883.19.5" extension="DOC-1"/>
  <effectiveTime value="20210309"/>
  <recordTarget><patientRole>
    <id root="2.16.840.1.113883.19.5.99999.2" extension="MR-0048291"/>
    <patient><name><given>Qortimer</given><family>Zyxwquist</family></name><birthTime value="19500521"/></patient>
  </patientRole></recordTarget>
  <component><structuredBody><component><section><title>Plan</title>
    <text><paragraph>Mr. Zyxwquist returns on 03/16/2021.</paragraph></text>
  </section></component></structuredBody></component>
</ClinicalDocument>
"""


def test_one_mrn_is_one_patient_across_adt_oru_and_ccd(tmp_path: Path, make_context: Callable[..., ReaderContext]) -> None:
    context = make_context()
    adt = tmp_path / "adt.hl7"
    adt.write_bytes(ADT.encode())
    oru = tmp_path / "oru.hl7"
    oru.write_bytes(
        b"MSH|^~\\&|LAB|Qorvath Memorial|||20210303||ORU^R01|MSG00018|P|2.5.1\n"
        b"PID|1||MR-0048291^^^QMH^MR||Zyxwquist^Qortimer||19500521|M\n"
        b"OBR|1|||CBC|||20210302083000\n"
    )
    ccd = tmp_path / "ccd.xml"
    ccd.write_text(CCD)
    written_hl7 = []
    for path in (adt, oru):
        (result,) = transform(path, context)
        written_hl7.append({line[:3]: line.split("|") for line in re.split(r"\r\n|\r|\n", result.output.decode()) if line})
    pids = [message["PID"] for message in written_hl7]
    assert pids[0][5].split("^")[:2] == pids[1][5].split("^")[:2] and pids[0][3].split("~")[0] == pids[1][3]
    assert pids[0][7] == pids[1][7] and written_hl7[0]["EVN"][2] == written_hl7[1]["OBR"][7]  # one date offset
    reader = format_for(ccd)
    assert isinstance(reader, CcdaFormat)
    (unit, _, _), = list(reader.units(ccd, ccd.name, 0, 0))
    written = reader.transform(unit, context).output.decode()
    family = pids[0][5].split("^")[0]
    assert f"<family>{family}</family>" in written and f"extension=\"{pids[0][3].split('^')[0]}\"" in written
    assert f"Mr. {family}" in written  # the narrative's mention gets the header's surrogate


def test_a_run_that_skips_files_says_so_in_its_exit_status(
    tmp_path: Path, appliance_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "adt.hl7").write_bytes(ADT.encode())
    (source / "LICENSE").write_text("Apache License\n")
    monkeypatch.setattr(sys, "argv", ["appliance", "deid", "run", str(source), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as done:
        cli_main.run()
    printed = capsys.readouterr()
    assert done.value.code == 13
    assert "LICENSE: skipped: unsupported format" in printed.out + printed.err and "1 files skipped" in printed.out + printed.err
    assert (tmp_path / "out" / "adt.hl7").is_file()


def test_the_dataset_reads_obx_reports_and_cda_narratives(tmp_path: Path, make_context: Callable[..., ReaderContext]) -> None:
    context = make_context()
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    adt = tmp_path / "adt.hl7"
    adt.write_bytes(ADT.encode())
    (corpus_dir / "adt.hl7").write_bytes(b"".join(result.output for result in transform(adt, context)))
    ccd = tmp_path / "ccd.xml"
    ccd.write_text(CCD)
    reader = format_for(ccd)
    (unit, _, _), = list(reader.units(ccd, ccd.name, 0, 0))
    (corpus_dir / "ccd.xml").write_bytes(reader.transform(unit, context).output)
    (corpus_dir / "other.xml").write_text("<catalog/>")
    documents = {document.key: document for document in read_corpus(corpus_dir).documents}
    assert sorted(documents) == ["adt.hl7#1", "ccd.xml#file"]
    report, narrative = documents["adt.hl7#1"], documents["ccd.xml#file"]
    assert report.text.splitlines()[0].startswith("Seen today with his wife") and "| follow-up" in report.text
    assert "72" not in report.text  # a numeric observation is not prose
    assert narrative.text.startswith("# Plan\nMr. ") and "Zyxwquist" not in narrative.text
    assert report.group == narrative.group  # one patient, so one side of the train/validation split


KILL_SCRIPT = """
import os, sys
from pathlib import Path
import deid.run.runner as runner
from deid.config import DeidConfig
from deid.keystore import Keystore
from deid.ledger.config import LedgerConfig
from deid.ledger.writer import LedgerWriter

runner.CHECKPOINT_UNITS = 4
original = LedgerWriter.append
appended = [0]

def append(self, action, payload):
    sequence = original(self, action, payload)
    appended[0] += 1
    if appended[0] == int(sys.argv[2]):
        os._exit(9)  # a hard kill: no clean-up, no final checkpoint
    return sequence

LedgerWriter.append = append
home = Path(sys.argv[1])
runner.deidentify([home / "in"], home / "out", config=DeidConfig(), keystore=Keystore.open(home / "keystore"),
                    ledger_path=home / "ledger.jsonl", ledger_config=LedgerConfig())
"""


def test_a_killed_run_over_a_batch_file_resumes_at_the_message(tmp_path: Path, detector: PhiDetector) -> None:
    source = tmp_path / "in"
    source.mkdir()
    # one control id for all: feeds resend under one id, and each message is still its own ledger entry
    messages = [ADT.replace("MR-0048291", f"MR-00{i:05d}") for i in range(30)]
    (source / "feed.hl7").write_bytes(("FHS|^~\\&|ADT1\r" + "".join(messages) + "FTS|30\r").encode())
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    repo = Path(__file__).resolve().parents[3]
    killed = subprocess.run([sys.executable, str(script), str(tmp_path), "17"], cwd=repo, capture_output=True, timeout=300, check=False)
    assert killed.returncode == 9, killed.stderr.decode()[-2000:]
    assert not (tmp_path / "out" / "feed.hl7").exists()

    def run(home: Path) -> RunSummary:
        return deidentify([source], home / "out", config=DeidConfig(), keystore=Keystore.open(home / "keystore"),
                          ledger_path=home / "ledger.jsonl", ledger_config=LedgerConfig(), detector=detector)

    summary = run(tmp_path)
    assert summary.files_resumed == 1 and summary.documents == 32 and summary.malformed == 0
    clean = tmp_path / "clean"
    clean.mkdir()
    shutil.copytree(tmp_path / "keystore", clean / "keystore")
    run(clean)
    assert (tmp_path / "out" / "feed.hl7").read_bytes() == (clean / "out" / "feed.hl7").read_bytes()
    entries = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    documents = [e["payload"] for e in entries if e["action"] == "deid.document"]
    assert len(documents) == 32 and len({d["document_id"] for d in documents}) == 32
    assert {d["format"] for d in documents} == {"hl7v2"}


def test_line_endings_split_right_across_read_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from deid.readers import hl7v2

    data = b"MSH|^~\\&|A\r\nPID|1\rOBX|1\nNTE|x\r\n\r\n"
    for chunk in (1, 2, 3, 5, 64):
        monkeypatch.setattr(hl7v2, "_CHUNK", chunk)
        lines = list(hl7v2._lines(io.BytesIO(data), 0))
        assert [line for line, _ in lines] == [b"MSH|^~\\&|A\r\n", b"PID|1\r", b"OBX|1\n", b"NTE|x\r\n", b"\r\n"], chunk
        assert [offset for _, offset in lines] == [12, 18, 24, 31, 33]
    monkeypatch.setattr(hl7v2, "MAX_MESSAGE_BYTES", 8)
    pieces = [line for line, _ in hl7v2._lines(io.BytesIO(b"X" * 40 + b"\r"), 0)]
    assert b"".join(pieces) == b"X" * 40 + b"\r" and max(len(piece) for piece in pieces) <= 8 + 64


def test_a_fhir_patient_with_the_mrn_is_the_same_patient(tmp_path: Path, make_context: Callable[..., ReaderContext]) -> None:
    from datetime import date

    from deid.readers.fhir_resource import ResourceScrubber
    from deid.readers.patients import PatientIndex, build_patient_index

    patient = {
        "resourceType": "Patient", "id": "p-1",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": "MR-0048291"}],
        "name": [{"family": "Zyxwquist", "given": ["Qortimer"]}], "birthDate": "1950-05-21",
    }
    build_patient_index(tmp_path / "p.sqlite", [patient])
    context = make_context(patients=PatientIndex(tmp_path / "p.sqlite"))
    fhir, _ = ResourceScrubber(context).scrub(json.loads(json.dumps(patient)))
    path = tmp_path / "adt.hl7"
    path.write_bytes(ADT.encode())
    (result,) = transform(path, context)
    pid = next(line for line in result.output.decode().split("\r") if line.startswith("PID")).split("|")
    assert pid[5].split("^")[:2] == [fhir["name"][0]["family"], fhir["name"][0]["given"][0]]
    assert pid[3].split("^")[0] == fhir["identifier"][0]["value"]  # one keyed fake MRN in both formats
    hl7_birth = date(int(pid[7][:4]), int(pid[7][4:6]), int(pid[7][6:8]))
    assert hl7_birth == date.fromisoformat(fhir["birthDate"])  # one date shift
