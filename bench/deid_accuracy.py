"""Token-level recall and precision of ``PhiDetector`` per identifier type.

A gold PHI token counts as found when any predicted span overlaps it (the bar: recall >= 0.97
with precision >= 0.75); a predicted token is correct when it overlaps a gold span. Tokens are
runs of letters or digits. Data sets:
- ``bench/data/clinical_dev.jsonl``: clinical-style notes with planted PHI
  (``bench/data/make_clinical_notes.py``);
- ``bench/data/clinical_hard.jsonl``: telegraphic lower-case and ALL-CAPS nursing notes with
  first names alone, bare towns, employers and named wards (``bench/data/make_hard_notes.py``);
- ``shared/data/deid-dev/presidio_synth_v2.jsonl``: synthetic non-clinical sentences whose
  labels are mapped onto the appliance's types; labels that are not PHI under Safe Harbor
  (organisations, job titles, nationalities, ages under 90) are ignored: their tokens count
  neither as misses nor as false positives.

Run: ``.venv/bin/python -m bench.deid_accuracy [--show-errors N]`` (errors are printed only for
these synthetic sets, never for real records).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from deid.config import DeidConfig
from deid.detection.engine import PhiDetector
from deid.detection.spans import DetectedSpan

ROOT = Path(__file__).resolve().parents[1]
CLINICAL_DEV = ROOT / "bench" / "data" / "clinical_dev.jsonl"
CLINICAL_HARD = ROOT / "bench" / "data" / "clinical_hard.jsonl"
PRESIDIO_SYNTH = ROOT.parent / "shared" / "data" / "deid-dev" / "presidio_synth_v2.jsonl"
TOKEN = re.compile(r"[A-Za-z0-9]+")
IGNORE = "IGNORE"
SYNTH_LABELS = {
    "PERSON": "PATIENT", "STREET_ADDRESS": "LOCATION", "GPE": "LOCATION", "ZIP_CODE": "LOCATION",
    "CREDIT_CARD": "ACCOUNT", "IBAN_CODE": "ACCOUNT", "DATE_TIME": "DATE", "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL", "DOMAIN_NAME": "URL", "US_SSN": "SSN", "IP_ADDRESS": "IP_ADDRESS",
    "US_DRIVER_LICENSE": "LICENSE", "ORGANIZATION": IGNORE, "TITLE": IGNORE, "NRP": IGNORE,
}


@dataclass
class Note:
    text: str
    gold: list[tuple[int, int, str]]


@dataclass
class Tally:
    gold_tokens: Counter[str] = field(default_factory=Counter)
    gold_found: Counter[str] = field(default_factory=Counter)
    predicted_tokens: Counter[str] = field(default_factory=Counter)
    predicted_correct: Counter[str] = field(default_factory=Counter)
    misses: list[str] = field(default_factory=list)
    false_positives: list[str] = field(default_factory=list)


def load_clinical(path: Path = CLINICAL_DEV) -> list[Note]:
    notes = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        notes.append(Note(record["text"], [(s["start"], s["end"], s["label"]) for s in record["spans"]]))
    return notes


def load_synth() -> list[Note]:
    notes = []
    for line in PRESIDIO_SYNTH.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        gold = []
        for span in record["spans"]:
            label = SYNTH_LABELS.get(span["label"], IGNORE)
            if span["label"] == "AGE":
                digits = re.sub(r"\D", "", span["text"])
                label = "AGE_OVER_89" if digits and int(digits) > 89 else IGNORE
            gold.append((span["start"], span["end"], label))
        notes.append(Note(record["text"], gold))
    return notes


def score(notes: list[Note], predictions: Iterable[list[DetectedSpan]]) -> Tally:
    tally = Tally()
    for note, spans in zip(notes, predictions, strict=True):
        for match in TOKEN.finditer(note.text):
            start, end = match.span()
            gold = next((label for s, e, label in note.gold if s < end and e > start), None)
            predicted = next((span.entity_type for span in spans if span.start < end and span.end > start), None)
            if gold == IGNORE:
                continue
            context = note.text[max(0, start - 30) : end + 30].replace("\n", " ")
            if gold is not None:
                tally.gold_tokens[gold] += 1
                if predicted is not None:
                    tally.gold_found[gold] += 1
                else:
                    tally.misses.append(f"{gold:12} {match.group()!r:20} ...{context}...")
            if predicted is not None:
                tally.predicted_tokens[predicted] += 1
                if gold is not None:
                    tally.predicted_correct[predicted] += 1
                else:
                    tally.false_positives.append(f"{predicted:12} {match.group()!r:20} ...{context}...")
    return tally


def report(name: str, tally: Tally, show_errors: int) -> None:
    print(f"\n{name}")
    print(f"  {'type':14} {'gold tok':>8} {'recall':>7} {'pred tok':>8} {'precision':>9}")
    for entity in sorted(set(tally.gold_tokens) | set(tally.predicted_tokens)):
        gold, pred = tally.gold_tokens[entity], tally.predicted_tokens[entity]
        recall = f"{tally.gold_found[entity] / gold:.3f}" if gold else "-"
        precision = f"{tally.predicted_correct[entity] / pred:.3f}" if pred else "-"
        print(f"  {entity:14} {gold:8} {recall:>7} {pred:8} {precision:>9}")
    gold, pred = sum(tally.gold_tokens.values()), sum(tally.predicted_tokens.values())
    recall = sum(tally.gold_found.values()) / gold if gold else 0.0
    precision = sum(tally.predicted_correct.values()) / pred if pred else 0.0
    print(f"  {'OVERALL':14} {gold:8} {recall:7.3f} {pred:8} {precision:9.3f}")
    for title, rows in (("missed", tally.misses), ("false positives", tally.false_positives)):
        if show_errors and rows:
            print(f"  -- {title} (first {show_errors}) --")
            for row in rows[:show_errors]:
                print(f"    {row}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show-errors", type=int, default=0, help="print N missed and N false tokens per set")
    parser.add_argument("--ner", action="store_true", help="also use spaCy's statistical NER")
    args = parser.parse_args()
    detector = PhiDetector(DeidConfig(use_spacy_ner=args.ner))
    for name, notes in (("clinical-style dev set (bench/data/clinical_dev.jsonl)", load_clinical()),
                        ("hard nursing-note set (bench/data/clinical_hard.jsonl)", load_clinical(CLINICAL_HARD)),
                        ("presidio synth v2 (non-clinical, labels mapped)", load_synth())):
        started = time.perf_counter()
        predictions = detector.detect_many([note.text for note in notes])
        elapsed = time.perf_counter() - started
        report(f"{name}: {len(notes)} texts, {elapsed:.1f} s", score(notes, predictions), args.show_errors)


if __name__ == "__main__":
    main()
