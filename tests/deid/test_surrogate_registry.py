"""The surrogate registry: what gets registered, what never does, and how it survives a kill."""

from __future__ import annotations

from pathlib import Path

from deid.anonymize.operators import Anonymizer
from deid.anonymize.surrogates import SurrogateFactory
from deid.config import AnonymizationMode, DeidConfig
from deid.detection.spans import DetectedSpan
from deid.surrogate_registry import LOG_FILE, REGISTRY_FILE, RegistryWriter, digest, load_registry, normalize

KEY = b"k" * 32


def test_normalization_ignores_case_spacing_and_edge_punctuation() -> None:
    assert normalize("  (Dr.  JONES,\n Mary). ") == "dr. jones, mary"
    assert normalize("90+") == "90+" and normalize("+1 555-0101") == "+1 555-0101"
    assert digest("Jones,") == digest("jones") and digest(" .,; ") is None


def test_every_fake_is_registered_and_no_original() -> None:
    text = "Mr. Peter Haldane (94 yo), MRN 7731002, seen 06/11/2022 at Greenview Nursing Home, peter@mail.org"
    spans = [
        DetectedSpan(0, 17, "PATIENT", 0.9),
        DetectedSpan(19, 24, "AGE_OVER_89", 0.9),
        DetectedSpan(31, 38, "MRN", 0.9),
        DetectedSpan(45, 55, "DATE", 0.9),
        DetectedSpan(59, 81, "HOSPITAL", 0.9),
        DetectedSpan(83, 97, "EMAIL", 0.9),
    ]
    anonymizer = Anonymizer(DeidConfig(), SurrogateFactory(KEY, date_shift_max_days=30))
    out, applied = anonymizer.text(text, spans, "p1")
    assert len(applied) == len(spans)
    registered = anonymizer.surrogates.drain_registered()
    originals = ["Mr. Peter Haldane", "Peter", "Haldane", "Mr", "94 yo", "7731002", "06/11/2022", "Greenview",
                 "Greenview Nursing Home", "peter@mail.org"]
    assert not {digest(value) for value in originals} & registered
    fake_name = out[: out.index(" (")]
    assert digest(fake_name) in registered
    assert all(digest(word) in registered for word in fake_name.split()[1:])  # each fake name part
    assert {digest("90+"), digest("90+ yo")} <= registered
    fake_date = out[out.index("seen ") + 5 : out.index(" at ")]
    assert fake_date != "06/11/2022" and digest(fake_date) in registered
    assert anonymizer.surrogates.drain_registered() == frozenset()  # drained once


def test_redact_mode_registers_only_the_age_cap() -> None:
    anonymizer = Anonymizer(DeidConfig(mode=AnonymizationMode.redact), SurrogateFactory(KEY, date_shift_max_days=30))
    out, _ = anonymizer.text("Peter Haldane, 94, seen 06/11/2022", [
        DetectedSpan(0, 13, "PATIENT", 0.9), DetectedSpan(15, 17, "AGE_OVER_89", 0.9), DetectedSpan(24, 34, "DATE", 0.9)
    ], "p1")
    assert out == "[NAME], 90+, seen [DATE]"
    assert anonymizer.surrogates.drain_registered() == {digest("90+")}


def test_writer_merges_a_killed_runs_log_and_repairs_a_torn_line(tmp_path: Path) -> None:
    state = tmp_path / ".deid-state"
    first = RegistryWriter(state)
    first.add(["a" * 64, "b" * 64])
    first.flush()
    first.add(["c" * 64])  # collected after the last checkpoint: lost with the kill, redone on resume
    with open(state / LOG_FILE, "a") as log:
        log.write("d" * 30)  # a kill in the middle of an append
    resumed = RegistryWriter(state)
    resumed.add(["c" * 64, "a" * 64])
    path = resumed.publish()
    assert path == state / REGISTRY_FILE
    assert path.read_text() == "".join(f"{ch * 64}\n" for ch in "abc")
    assert load_registry(state / LOG_FILE) == {"a" * 64, "b" * 64, "c" * 64}
    again = RegistryWriter(state)  # a later run over the same folder keeps what was published
    again.add(["e" * 64])
    assert load_registry(again.publish()) == {ch * 64 for ch in "abce"}
