"""What an auditor's report says, computed from the ledger alone (plus de-identified outputs).

The report never needs a raw record. Counts, coverage and the timeline come from ledger
payloads, each re-checked against the payload policy before use, so even a hand-edited ledger
cannot smuggle text into the report. Spot-check snippets come only from files under the
de-identified output directory whose sha256 equals the ``output_sha256`` the ledger recorded
for that document, and never from a document whose output equals its input (nothing was
removed: exactly the case a human must review first).
"""

from __future__ import annotations

import json
import random
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deid.fileio import sha256_file
from deid.ledger.entry import CHECKPOINT_ACTION, RECOVERY_ACTION
from deid.ledger.payload import LedgerPayloadError, validate_action, validate_payload
from deid.ledger.verify import VerificationResult

SNIPPET_CHARS = 600
MAX_EVALUATIONS = 5  # the latest local accuracy checks shown, newest first
MAX_SNIPPET_FILE = 50 << 20

# HIPAA Safe Harbor, 45 CFR 164.514(b)(2)(i): the 18 identifiers, letters A to R.
HIPAA_IDENTIFIERS: tuple[tuple[str, str], ...] = (
    ("A", "Names"),
    ("B", "Geographic subdivisions smaller than a state"),
    ("C", "Dates (except year) and ages over 89"),
    ("D", "Telephone numbers"),
    ("E", "Fax numbers"),
    ("F", "Email addresses"),
    ("G", "Social Security numbers"),
    ("H", "Medical record numbers"),
    ("I", "Health plan beneficiary numbers"),
    ("J", "Account numbers"),
    ("K", "Certificate and license numbers"),
    ("L", "Vehicle identifiers and serial numbers"),
    ("M", "Device identifiers and serial numbers"),
    ("N", "Web URLs"),
    ("O", "IP addresses"),
    ("P", "Biometric identifiers"),
    ("Q", "Full-face photographs and comparable images"),
    ("R", "Any other unique identifying number, characteristic or code"),
)
# Entity types of the appliance's detector (and Presidio's names for the same things).
ENTITY_TO_IDENTIFIER: dict[str, str] = {
    "PATIENT": "A",
    "CLINICIAN": "A",
    "PERSON": "A",
    "HOSPITAL": "B",
    "LOCATION": "B",
    "DATE": "C",
    "DATE_TIME": "C",
    "AGE_OVER_89": "C",
    "PHONE": "D",
    "PHONE_NUMBER": "D",
    "FAX": "E",
    "EMAIL": "F",
    "EMAIL_ADDRESS": "F",
    "SSN": "G",
    "US_SSN": "G",
    "MRN": "H",
    "HEALTH_PLAN": "I",
    "ACCOUNT": "J",
    "LICENSE": "K",
    "VEHICLE": "L",
    "DEVICE": "M",
    "URL": "N",
    "IP_ADDRESS": "O",
    "ID": "R",
}
NOT_IN_TEXT = frozenset({"P", "Q"})


@dataclass
class _Tally:
    """Accumulates what the report shows while the ledger is read once."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    by_type: Counter[str] = field(default_factory=Counter)
    by_source: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    by_action: Counter[str] = field(default_factory=Counter)
    operators: Counter[str] = field(default_factory=Counter)
    times: list[tuple[datetime, int, int]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    unreadable: int = 0


def _read(path: Path) -> _Tally:
    tally = _Tally()
    with open(path, "rb") as handle:
        for raw in handle:
            try:
                entry = json.loads(raw)
                payload = entry["payload"]
                action = str(entry["action"])
                when = datetime.fromisoformat(str(entry["time"]).replace("Z", "+00:00"))
                seq = int(entry["seq"])
            except (ValueError, KeyError, TypeError):
                tally.unreadable += 1
                continue
            try:
                validate_action(action)
            except LedgerPayloadError:
                tally.refused += 1
                continue
            tally.by_action[action] += 1
            if action in (CHECKPOINT_ACTION, RECOVERY_ACTION):
                continue
            try:
                validate_payload(payload)
            except LedgerPayloadError:
                tally.refused += 1
                continue
            if "document_id" in payload and "entity_counts" in payload:
                _add_document(tally, payload, seq, when)
            elif "request_id" in payload:
                tally.requests.append(payload)
            elif "evaluation" in payload:
                tally.evaluations.append(_evaluation(payload, seq, when))
    return tally


def _source_label(payload: dict[str, Any]) -> str:
    """The file name, or a hash prefix when the writer judged the name unfit for the ledger."""
    if "source" in payload:
        return str(payload["source"])
    if "source_sha256" in payload:
        return f"sha256:{payload['source_sha256'][:16]}"
    return "(unnamed)"


def _add_document(tally: _Tally, payload: dict[str, Any], seq: int, when: datetime) -> None:
    counts: dict[str, int] = payload["entity_counts"]
    total = sum(counts.values())
    source = _source_label(payload)
    tally.by_type.update(counts)
    tally.by_source[source]["documents"] += 1
    tally.by_source[source]["entities"] += total
    if total == 0:
        tally.by_source[source]["no_detections"] += 1
    for span in payload.get("spans", []):
        tally.operators[span["operator"]] += 1
    tally.times.append((when, 1, total))
    tally.documents.append(
        {
            "seq": seq,
            "time": when.isoformat().replace("+00:00", "Z"),
            "document_id": payload["document_id"],
            "source": source,
            "format": payload.get("format"),
            "rules_version": payload.get("rules_version"),
            "detector_version": payload.get("detector_version"),
            "entity_counts": counts,
            "entities": total,
            "output_sha256": payload.get("output_sha256"),
            "unchanged": payload.get("unchanged") is True,
        }
    )


def _evaluation(payload: dict[str, Any], seq: int, when: datetime) -> dict[str, Any]:
    """A local accuracy check (``appliance deid evaluate``): its figures and what was scored."""
    return {
        "seq": seq,
        "time": when.isoformat().replace("+00:00", "Z"),
        "documents": payload.get("documents"),
        "malformed": payload.get("malformed_count", 0),
        "detector_version": payload.get("detector_version"),
        "rules_version": payload.get("rules_version"),
        "gold_hash": payload.get("gold_hash"),
        "metrics": payload["evaluation"],
    }


def _timeline(times: list[tuple[datetime, int, int]]) -> dict[str, Any]:
    """Documents and entities per bucket: hours for a short span, days otherwise."""
    if not times:
        return {"unit": "day", "buckets": []}
    span = max(t for t, _, _ in times) - min(t for t, _, _ in times)
    unit = "hour" if span.total_seconds() <= 2 * 86400 else "day"
    pattern = "%Y-%m-%dT%H:00Z" if unit == "hour" else "%Y-%m-%d"
    buckets: dict[str, list[int]] = {}
    for when, documents, entities in sorted(times):
        bucket = buckets.setdefault(when.astimezone(UTC).strftime(pattern), [0, 0])
        bucket[0] += documents
        bucket[1] += entities
    return {
        "unit": unit,
        "buckets": [{"bucket": key, "documents": d, "entities": e} for key, (d, e) in buckets.items()],
    }


def _coverage(by_type: Counter[str]) -> tuple[list[dict[str, Any]], list[str]]:
    rows = []
    for letter, name in HIPAA_IDENTIFIERS:
        types = sorted(t for t, target in ENTITY_TO_IDENTIFIER.items() if target == letter)
        found = sum(by_type.get(t, 0) for t in types)
        if letter in NOT_IN_TEXT:
            status = "not applicable to text records"
        elif found:
            status = "detected"
        else:
            status = "covered by the detector; none found"
        rows.append({"letter": letter, "identifier": name, "entity_types": types, "found": found, "status": status})
    unmapped = sorted(t for t in by_type if t not in ENTITY_TO_IDENTIFIER)
    return rows, unmapped


def _api_summary(requests: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = sorted(float(r["latency_ms"]) for r in requests if "latency_ms" in r)

    def percentile(share: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(share * len(latencies)))], 3)

    return {
        "requests": len(requests),
        "by_role": dict(Counter(str(r.get("role", "unknown")) for r in requests)),
        "by_status": dict(Counter(str(r.get("status", "unknown")) for r in requests)),
        "by_endpoint": dict(Counter(str(r.get("endpoint", "unknown")) for r in requests)),
        "phi_types": dict(Counter(t for r in requests for t in r.get("phi_types", []))),
        "prompt_tokens": sum(int(r.get("prompt_tokens", 0)) for r in requests),
        "completion_tokens": sum(int(r.get("completion_tokens", 0)) for r in requests),
        "latency_ms_median": round(statistics.median(latencies), 3) if latencies else None,
        "latency_ms_p95": percentile(0.95),
    }


def _index_outputs(directory: Path) -> dict[str, list[Path]]:
    index: dict[str, list[Path]] = defaultdict(list)
    for file in directory.rglob("*"):
        if file.is_file() and not file.is_symlink():
            index[file.name].append(file)
    return index


def _snippet(document: dict[str, Any], outputs: dict[str, list[Path]] | None) -> dict[str, Any]:
    """A de-identified excerpt, only from a file proven (by hash) to be this document's output."""
    if outputs is None:
        return {"status": "no de-identified directory given"}
    if not document["output_sha256"] or document["unchanged"]:
        return {"status": "withheld: the output equals the input (nothing was removed); review the record first"}
    for candidate in outputs.get(document["source"], []):
        if candidate.stat().st_size <= MAX_SNIPPET_FILE and sha256_file(candidate) == document["output_sha256"]:
            with open(candidate, encoding="utf-8", errors="replace") as handle:
                text = handle.read(SNIPPET_CHARS + 1)
            excerpt = text[:SNIPPET_CHARS] + (" [...]" if len(text) > SNIPPET_CHARS else "")
            return {"status": "verified de-identified output", "excerpt": excerpt}
    return {"status": "de-identified output not found, or changed since it was recorded"}


def build_report(
    ledger: Path,
    verification: VerificationResult,
    *,
    deidentified_dir: Path | None = None,
    sample_size: int = 10,
    seed: int | None = None,
) -> dict[str, Any]:
    """The report as JSON-ready data; :mod:`deid.ledger.report_html` renders the same data."""
    tally = _read(ledger)
    coverage, unmapped = _coverage(tally.by_type)
    flagged = [
        {"seq": d["seq"], "document_id": d["document_id"], "source": d["source"], "time": d["time"]}
        for d in tally.documents
        if d["entities"] == 0
    ]
    rng = random.Random(seed)
    sample = rng.sample(tally.documents, min(sample_size, len(tally.documents)))
    outputs = _index_outputs(deidentified_dir) if deidentified_dir is not None else None
    spot_check = [
        {
            "seq": d["seq"],
            "document_id": d["document_id"],
            "source": d["source"],
            "entity_counts": d["entity_counts"],
            **_snippet(d, outputs),
        }
        for d in sorted(sample, key=lambda d: d["seq"])
    ]
    return {
        "generated": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "ledger": {"file": ledger.name, "verification": verification.to_dict()},
        "entries_by_action": dict(tally.by_action),
        "entries_refused_by_policy": tally.refused,
        "entries_unreadable": tally.unreadable,
        "documents": len(tally.documents),
        "entities": sum(tally.by_type.values()),
        "by_type": dict(tally.by_type.most_common()),
        "by_source": {
            source: {"documents": c["documents"], "entities": c["entities"], "no_detections": c["no_detections"]}
            for source, c in sorted(tally.by_source.items())
        },
        "operators": dict(tally.operators.most_common()),
        "rules_versions": dict(Counter(str(d["rules_version"]) for d in tally.documents)),
        "detector_versions": dict(Counter(str(d["detector_version"]) for d in tally.documents)),
        "timeline": _timeline(tally.times),
        "hipaa_coverage": coverage,
        "unmapped_entity_types": unmapped,
        "flagged_no_detections": flagged,
        "spot_check": {"seed": seed, "size": len(spot_check), "documents": spot_check},
        "api": _api_summary(tally.requests),
        "evaluations": tally.evaluations[::-1][:MAX_EVALUATIONS],
    }
