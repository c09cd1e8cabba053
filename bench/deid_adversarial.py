"""Adversarial detection time: is ``PhiDetector.detect`` linear in its input whatever the input?

A prompt or a note is attacker-controlled text. A regular expression that backtracks on runs of
spaces or punctuation lets one 20,000-character input hold a core for minutes, and in the API it
held every clinician. The bar: every adversarial 20,000-character input takes at most 3x an
ordinary 20,000-character clinical-style note.

Each input is timed in a child process that holds one detector; when an input passes the cap
the child is killed and replaced, so one pathological pattern cannot stop the run, and the row
shows ``>cap``. ``--recognizers`` also times each recognizer's ``analyze``, spaCy's tokenizer and
the whole of Presidio's ``analyze`` separately on every input whose ratio fails the bar, which
names the pattern to fix. The ordinary note is built here from the project's generated notes
(``bench/data/clinical_dev.jsonl``), never from real ones.

Run: ``.venv/bin/python -m bench.deid_adversarial [--chars 20000] [--cap 30] [--recognizers] [--only NAME...]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

CLINICAL_DEV = Path(__file__).resolve().parent / "data" / "clinical_dev.jsonl"
BAR = 3.0


def ordinary_note(chars: int) -> str:
    """Generated clinical notes joined until ``chars`` characters: the baseline a real note resembles."""
    notes = [json.loads(line)["text"] for line in CLINICAL_DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    parts: list[str] = []
    size = 0
    index = 0
    while size < chars:
        note = notes[index % len(notes)]
        parts.append(note)
        size += len(note) + 2
        index += 1
    return "\n\n".join(parts)[:chars]


def repeat(unit: str) -> Callable[[int], str]:
    def build(chars: int) -> str:
        return (unit * (chars // len(unit) + 1))[:chars]

    return build


# Runs that no PHI contains, runs that look like the start of PHI again and again, and tokens
# that never end: each family has broken a recognizer pattern in the past or could.
ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "spaces": repeat(" "),
    "tabs": repeat("\t"),
    "newlines": repeat("\n"),
    "crlf": repeat("\r\n"),
    "nbsp": repeat("\u00a0"),
    "colons": repeat(":"),
    "dots": repeat("."),
    "commas": repeat(","),
    "dashes": repeat("-"),
    "slashes": repeat("/"),
    "underscores": repeat("_"),
    "hashes": repeat("#"),
    "parens": repeat("("),
    "at-signs": repeat("@"),
    "digits": repeat("1"),
    "digit-space": repeat("1 "),
    "digit-slash": repeat("1/"),
    "digit-dash": repeat("1-"),
    "digit-dot": repeat("1."),
    "digit-colon": repeat("12:"),
    "digit-comma": repeat("1,"),
    "digit-groups": repeat("123 45 "),
    "phone-like": repeat("(617) 555 "),
    "date-like": repeat("01/02/"),
    "capitalised-words": repeat("Smith "),
    "capitalised-pairs": repeat("John Smith "),
    "caps-words": repeat("SMITH "),
    "lower-words": repeat("a "),
    "dr-titles": repeat("Dr. "),
    "titles-mixed": repeat("Mr. Dr. Ms. "),
    "name-comma": repeat("Smith, "),
    "initials": repeat("J. "),
    "colon-space": repeat(": "),
    "dot-space": repeat(". "),
    "comma-space": repeat(", "),
    "dash-space": repeat("- "),
    "slash-space": repeat("/ "),
    "punct-mix": repeat(".,:;-/ "),
    "space-newline": repeat(" \n"),
    "space-tab": repeat(" \t"),
    "comma-blanks": repeat(", \t"),
    "dash-digit": repeat("-1"),
    "label-colon": repeat("MRN: "),
    "street-words": repeat("Main St "),
    "hospital-words": repeat("General Hospital "),
    "month-words": repeat("Jan "),
    "email-like": repeat("a@b."),
    "url-like": repeat("http://a."),
    "www-dots": repeat("www."),
    "alnum-id": repeat("A1-B2 "),
    "one-token-lower": repeat("a"),
    "one-token-upper": repeat("A"),
    "one-token-mixed": repeat("Ab"),
    "one-token-alnum": repeat("a1"),
    "unicode-latin": repeat("é"),
    "unicode-cyrillic-words": repeat("Жук "),
    "unicode-cjk": repeat("漢字"),
    "emoji": repeat("\U0001f600 "),
}


def child(connection: Connection) -> None:
    """Hold one detector; answer ``(kind, name, text)`` requests with seconds until the pipe closes."""
    from deid.detection.engine import LANGUAGE, PhiDetector

    detector = PhiDetector()
    detector.detect("warm up with Dr. Smith on 01/02/2020 at 617-555-0100.")
    connection.send("ready")
    while True:
        try:
            kind, name, text = connection.recv()
        except EOFError:
            return
        started = time.perf_counter()
        if kind == "detect":
            detector.detect(text)
        elif kind == "spacy":
            detector._nlp_engine.process_text(text, LANGUAGE)
        else:
            for recognizer in detector._analyzer.registry.recognizers:
                if str(recognizer.name) == name:
                    # the clinical recognizers read only the text; None stands for no spaCy artefacts
                    recognizer.analyze(text, recognizer.supported_entities, None)  # type: ignore[arg-type]
        connection.send(time.perf_counter() - started)


class Timer:
    """A detector in a child process that is killed and replaced when an input passes the cap."""

    def __init__(self, cap: float) -> None:
        self.cap = cap
        self._context = multiprocessing.get_context("spawn")
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None

    def _start(self) -> Connection:
        if self._connection is None:
            parent, child_end = self._context.Pipe()
            self._process = self._context.Process(target=child, args=(child_end,), daemon=True)
            self._process.start()
            child_end.close()
            if parent.recv() != "ready":
                raise RuntimeError("detector child did not start")
            self._connection = parent
        return self._connection

    def time(self, kind: str, name: str, text: str) -> float | None:
        """Seconds for one request, or None when it ran past the cap."""
        connection = self._start()
        connection.send((kind, name, text))
        if connection.poll(self.cap):
            return float(connection.recv())
        self.close()
        return None

    def recognizer_names(self) -> list[str]:
        from deid.detection.engine import PhiDetector

        return [str(recognizer.name) for recognizer in PhiDetector()._analyzer.registry.recognizers]

    def close(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join()
        if self._connection is not None:
            self._connection.close()
        self._process = None
        self._connection = None


def show(seconds: float | None, cap: float) -> str:
    return f">{cap:.0f}" if seconds is None else f"{seconds:.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=20_000, help="length of every input")
    parser.add_argument("--cap", type=float, default=30.0, help="seconds after which one input is abandoned")
    parser.add_argument("--repeats", type=int, default=3, help="timings of the ordinary note (median kept)")
    parser.add_argument("--recognizers", action="store_true", help="time each recognizer on inputs that fail the bar")
    parser.add_argument("--only", nargs="*", default=None, help="adversarial inputs to run (default: all)")
    args = parser.parse_args()
    chosen = args.only or list(ADVERSARIAL)
    unknown = sorted(set(chosen) - set(ADVERSARIAL))
    if unknown:
        print(f"unknown input(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    timer = Timer(args.cap)
    try:
        baseline_runs = [timer.time("detect", "", ordinary_note(args.chars)) for _ in range(args.repeats)]
        if any(run is None for run in baseline_runs):
            print("the ordinary note passed the cap; raise --cap", file=sys.stderr)
            return 2
        baseline = statistics.median(run for run in baseline_runs if run is not None)
        print(f"ordinary {args.chars}-char note: {baseline:.3f} s (median of {args.repeats}); bar {BAR:.0f}x")
        print(f"{'input':<24} {'seconds':>9} {'ratio':>8}")
        failing: list[str] = []
        worst = 0.0
        for name in chosen:
            seconds = timer.time("detect", "", ADVERSARIAL[name](args.chars))
            ratio = float("inf") if seconds is None else seconds / baseline
            worst = max(worst, ratio)
            mark = "" if ratio <= BAR else "  FAIL"
            print(f"{name:<24} {show(seconds, args.cap):>9} {ratio:>8.2f}{mark}", flush=True)
            if ratio > BAR:
                failing.append(name)
        print(f"worst ratio {worst:.2f}; {len(failing)} of {len(chosen)} inputs over {BAR:.0f}x")
        if args.recognizers and failing:
            names = timer.recognizer_names()
            for name in failing:
                text = ADVERSARIAL[name](args.chars)
                print(f"-- {name}: seconds per part")
                print(f"   {'spacy tokenizer':<32} {show(timer.time('spacy', '', text), args.cap):>9}")
                for recognizer in names:
                    seconds = timer.time("recognizer", recognizer, text)
                    if seconds is None or seconds > baseline / 4:
                        print(f"   {recognizer:<32} {show(seconds, args.cap):>9}", flush=True)
        return 0 if not failing else 1
    finally:
        timer.close()


if __name__ == "__main__":
    sys.exit(main())
