"""Whole-dataset de-identification: throughput over worker counts, and memory over input size.

``python -m bench.deid_run [--records N] [--workers 1,2,4]``. Builds a JSONL corpus from the
shipped Synthea notes (each note repeated under new ids and patients), then runs
``deid.run.runner.deidentify`` in a fresh process per configuration so peak RSS is that run's
own. Each worker count runs on the full corpus and on a quarter of it: the whole-run rate
includes start-up (imports, word lists, spawning workers), while the marginal rate, the extra
notes over the extra seconds, excludes it and shows how the work itself scales. Ratios are to
one worker measured in this same run. Peak RSS for the quarter and the full corpus shows a
streaming run's memory does not grow with the input.
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTES = REPO / "appliance" / "data" / "samples" / "fhir" / "DocumentReference.000.ndjson"

CHILD = """
import json, resource, sys, time
from pathlib import Path
from deid.config import DeidConfig
from deid.keystore import Keystore
from deid.ledger.config import LedgerConfig
from deid.run.runner import deidentify

if __name__ == "__main__":
    corpus, out, home, workers = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
    started = time.perf_counter()
    summary = deidentify([corpus], out, config=DeidConfig(), keystore=Keystore.open(home / "keystore"),
                         ledger_path=home / "ledger.jsonl", ledger_config=LedgerConfig(), workers=workers)
    seconds = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"documents": summary.documents, "seconds": seconds, "peak_rss_mib": rss}))
"""


def build_corpus(path: Path, records: int) -> int:
    notes = []
    for line in NOTES.read_text().splitlines():
        resource = json.loads(line)
        notes.append(base64.b64decode(resource["content"][0]["attachment"]["data"]).decode())
    with open(path, "w") as handle:
        for index in range(records):
            record = {"id": f"note-{index}", "patient_id": f"P{index % 97}", "text": notes[index % len(notes)]}
            handle.write(json.dumps(record) + "\n")
    return path.stat().st_size


def run_child(script: Path, corpus: Path, work: Path, workers: int) -> dict[str, float]:
    out = work / f"out-{corpus.stem}-{workers}"
    done = subprocess.run(
        [sys.executable, str(script), str(corpus), str(out), str(work), str(workers)],
        cwd=REPO, capture_output=True, text=True, check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=400)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-deid-run-") as scratch:
        work = Path(scratch)
        script = work / "child.py"
        script.write_text(CHILD)
        full, quarter = work / "full.jsonl", work / "quarter.jsonl"
        size = build_corpus(full, args.records)
        build_corpus(quarter, max(1, args.records // 4))
        print(f"corpus: {args.records} notes, {size / 1e6:.1f} MB")
        print("whole run = start-up included; marginal = (full - quarter corpus) / time difference, start-up excluded")
        baseline: tuple[float, float] | None = None
        memory: tuple[float, float] | None = None
        for workers in counts:
            small = run_child(script, quarter, work, workers)
            result = run_child(script, full, work, workers)
            rate = result["documents"] / result["seconds"]
            marginal = (result["documents"] - small["documents"]) / max(result["seconds"] - small["seconds"], 1e-9)
            startup = max(small["seconds"] - small["documents"] / marginal, 0.0)
            baseline = baseline or (rate, marginal)
            print(
                f"workers={workers}: whole run {rate:7.1f} notes/s (x{rate / baseline[0]:.2f} vs 1 worker)  "
                f"marginal {marginal:7.1f} notes/s (x{marginal / baseline[1]:.2f})  start-up ~{startup:.1f} s  "
                f"peak RSS (parent) {result['peak_rss_mib']:.0f} MiB"
            )
            if workers == 1:
                memory = (small["peak_rss_mib"], result["peak_rss_mib"])
        if memory is not None:
            print(
                f"peak RSS, 1 worker: {memory[0]:.0f} MiB for 1/4 of the corpus, "
                f"{memory[1]:.0f} MiB for all of it (ratio {memory[1] / memory[0]:.2f})"
            )


if __name__ == "__main__":
    main()
