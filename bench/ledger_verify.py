"""Verify a 100,000-entry ledger: the target is seconds, not minutes.

Writes a ledger shaped like a real de-identification run (document entries with spans and
counts, a signed checkpoint every 1,000 entries), then times full verification against a
floor measured in the same run: reading every line, parsing its JSON and hashing its bytes,
which no verifier can avoid. Verification is the auditor's on the appliance: signatures, every
entry's MAC and the head record (see :mod:`deid.ledger.auth`). ``ledger_head`` (what lineage
records read) is timed too.

Run: ``.venv/bin/python -m bench.ledger_verify [--entries N]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

from deid.keystore import Keystore, keyed_hash
from deid.ledger.auth import LedgerAuth
from deid.ledger.report import build_report
from deid.ledger.report_html import render_html
from deid.ledger.verify import ledger_head, verify_ledger
from deid.ledger.writer import LedgerWriter

TARGET_SECONDS = 10.0


def payload(index: int, secret: bytes) -> dict:
    spans = [
        {"start": 17 * n, "end": 17 * n + 9, "entity_type": kind, "operator": "surrogate"}
        for n, kind in enumerate(("PATIENT", "DATE", "MRN", "CLINICIAN")[: 1 + index % 4])
    ]
    counts: dict[str, int] = {}
    for span in spans:
        counts[span["entity_type"]] = counts.get(span["entity_type"], 0) + 1
    return {
        "document_id": keyed_hash(secret, f"doc-{index}"),
        "source": f"notes_{index // 1000:04d}.jsonl",
        "format": "jsonl",
        "detector_version": "1.0.0",
        "rules_version": "2026.11",
        "settings_sha256": "a" * 64,
        "input_hmac_sha256": keyed_hash(secret, f"in{index}"),
        "output_sha256": hashlib.sha256(b"out%d" % index).hexdigest(),
        "entity_counts": counts,
        "spans": spans,
    }


def floor_seconds(path: Path) -> float:
    """Parse and hash every line: the least any verifier must do."""
    start = time.perf_counter()
    with open(path, "rb") as handle:
        for line in handle:
            json.loads(line)
            hashlib.sha256(line).digest()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        store = Keystore.open(root / "keystore")
        secret = store.secret("document-id")
        ledger = root / "deid.jsonl"
        start = time.perf_counter()
        key = store.signing_key()
        auth = LedgerAuth.from_keystore(store)
        with LedgerWriter.open(ledger, key, auth=auth, actor="bench", checkpoint_every=1000, fsync=False) as writer:
            for index in range(args.entries):
                writer.append("deid.document", payload(index, secret))
        write_s = time.perf_counter() - start
        size_mb = ledger.stat().st_size / 1e6

        floor = floor_seconds(ledger)
        start = time.perf_counter()
        result = verify_ledger(ledger, store.public_keys(), auth=auth)
        verify_s = time.perf_counter() - start
        start = time.perf_counter()
        head = ledger_head(ledger)
        head_ms = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        page = render_html(build_report(ledger, result, sample_size=10, seed=0))
        report_s = time.perf_counter() - start

    assert result.ok and result.entries_authenticated and head == result.head_hash, result.problem
    print(f"ledger: {result.entries} entries ({result.checkpoints} checkpoints), {size_mb:.1f} MB")
    print(f"write (no fsync): {write_s:.2f} s = {args.entries / write_s:,.0f} entries/s")
    print(f"floor (parse + hash every line): {floor:.2f} s")
    rate = result.entries / verify_s
    print(f"verify_ledger: {verify_s:.2f} s = {rate:,.0f} entries/s; ratio to floor {verify_s / floor:.2f}x")
    print(f"ledger_head: {head_ms:.2f} ms")
    print(f"audit report (JSON + HTML, {len(page) / 1e3:.0f} kB page): {report_s:.2f} s")
    verdict = "PASS" if verify_s <= TARGET_SECONDS * args.entries / 100_000 else "FAIL"
    print(f"target {TARGET_SECONDS:.0f} s per 100,000 entries: {verdict}")


if __name__ == "__main__":
    main()
