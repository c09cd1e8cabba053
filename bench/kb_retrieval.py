"""Retrieval on MedQuAD: recall@5 of a chunk from the answer's own document, per method.

    .venv/bin/python -m bench.kb_retrieval [--kb-dir DIR] [--reuse] [--questions 1000]

Builds the index of all 16,407 pairs (timed, wall and CPU; bar: under 10 minutes on the
2-core machine), then asks held-out questions. Questions are never indexed (the reader keeps
only the answer, its focus and question type) and nothing is tuned on them: fusion is
rank-based and the similarity threshold was fixed beforehand. The held-out sample is every
pair whose id hashes into a fixed bucket, so it is the same on every run.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

from appliance.kb.base import KnowledgeBase
from appliance.kb.config import KnowledgeConfig
from appliance.kb.documents import medquad_document_id
from appliance.kb.retrieval import Method
from deid.egress import go_offline

MEDQUAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "medquad" / "medquad.jsonl.gz"
BUILD_BAR_S = 600.0
RECALL_BAR = 0.90
OFF_TOPIC = [
    "How do I configure a Kubernetes ingress controller?",
    "What is the capital of Australia?",
    "Best recipe for sourdough bread with a long cold proof",
    "How to change the oil in a 2012 Honda Civic",
    "Explain the offside rule in football",
    "Which Python web framework should I use for a REST API?",
    "What time does the stock market open in Tokyo?",
    "How do I reset my router password?",
    "Write a haiku about autumn leaves",
    "What is the exchange rate between euros and dollars?",
]


def held_out(records: list[dict], count: int) -> list[dict]:
    """A stable pseudo-random sample: pairs ordered by a hash of their id (and line)."""
    keyed = sorted(
        ((hashlib.sha256(f"heldout:{i}:{r['id']}".encode()).hexdigest(), i) for i, r in enumerate(records))
    )
    return [records[i] for _, i in keyed[:count]]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=MEDQUAD)
    parser.add_argument("--kb-dir", type=Path, default=None, help="keep the index here (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true", help="skip building when --kb-dir already holds the index")
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args(argv)
    go_offline()
    if not args.data.is_file():
        print(f"MedQuAD not found at {args.data}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory() as scratch:
        kb_dir = args.kb_dir or Path(scratch) / "kb"
        config = KnowledgeConfig()
        knowledge = KnowledgeBase.open(kb_dir, config, create=True)
        assert knowledge is not None
        if not (args.reuse and knowledge.store.counts()[1]):
            wall, cpu = time.perf_counter(), time.process_time()
            report = knowledge.add([args.data], progress=_progress)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(
                f"\nindex built: {report.added} documents, {report.chunks} chunks, {report.entities} entities, "
                f"{report.edges} links in {wall:.0f} s wall / {cpu:.0f} s CPU "
                f"({wall / BUILD_BAR_S:.2f} of the {BUILD_BAR_S:.0f} s bar: {'PASS' if wall < BUILD_BAR_S else 'FAIL'})"
            )
        wall = time.perf_counter()
        retriever = knowledge.retriever()
        print(f"retriever loaded in {time.perf_counter() - wall:.1f} s ({len(retriever)} chunks)")

        with gzip.open(args.data, "rt", encoding="utf-8") as handle:
            records = [json.loads(line) for line in handle]
        source = str(args.data.resolve())
        questions = held_out(records, args.questions)
        hits = dict.fromkeys(Method, 0)
        reciprocal = dict.fromkeys(Method, 0.0)
        answered = 0
        wall = time.perf_counter()
        for record in questions:
            target = f"{source}#{medquad_document_id(record)}"
            for method in Method:
                found = retriever.search(record["question"], args.k, method)
                ranks = [i for i, hit in enumerate(found) if hit.chunk.doc_key == target]
                if ranks:
                    hits[method] += 1
                    reciprocal[method] += 1.0 / (ranks[0] + 1)
            answered += bool(retriever.relevant(record["question"], args.k))
        per_query_ms = 1000 * (time.perf_counter() - wall) / (len(questions) * (len(Method) + 1))
        off_topic_refused = sum(not retriever.relevant(q, args.k) for q in OFF_TOPIC)

        n = len(questions)
        baseline = hits[Method.lexical] / n
        print(f"\n{n} held-out MedQuAD questions, recall@{args.k} of a chunk from the answer's own document")
        print(f"{'method':<10} {'recall@' + str(args.k):>9} {'MRR@' + str(args.k):>7} {'vs lexical':>11}")
        for method in Method:
            recall = hits[method] / n
            print(f"{method.value:<10} {recall:9.3f} {reciprocal[method] / n:7.3f} {recall / baseline:10.2f}x")
        hybrid = hits[Method.hybrid] / n
        print(f"hybrid recall@{args.k} {hybrid:.3f} vs bar {RECALL_BAR}: {'PASS' if hybrid >= RECALL_BAR else 'FAIL'}")
        print(
            f"relevance gate (min_similarity={config.min_similarity}): {answered / n:.3f} of held-out questions "
            f"get citations; {off_topic_refused}/{len(OFF_TOPIC)} off-topic questions get 'nothing relevant'"
        )
        print(f"mean search latency {per_query_ms:.0f} ms per query (one thread)")
        knowledge.close()
    return 0


def _progress(phase: str, done: int, total: int) -> None:
    print(f"\r{phase}: {done}/{total} documents", end="", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
