"""Answers with vs without retrieval on held-out MedQuAD questions (ROUGE-L vs the reference).

    .venv/bin/python -m bench.kb_rag_eval --kb-dir DIR [--questions 30] [--max-tokens 160]

Uses the embedded SmolLM2 through llama-cpp-python, greedy, with the consultation system
prompt; the grounded run adds the passages exactly as ``/v1/consult`` does
(``KnowledgeService.ground``). The knowledge base must hold MedQuAD (build it with
``bench.kb_retrieval --kb-dir DIR`` or ``appliance kb add``). The questions are the first of
the retrieval benchmark's held-out sample; they are never indexed, but their answers are:
this measures how much an answer gains when the approved passage is in the knowledge base.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from pathlib import Path

from appliance.evaluate.rouge import rouge_l
from appliance.kb.config import KnowledgeConfig
from appliance.kb.grounding import KnowledgeService
from bench.kb_retrieval import MEDQUAD, held_out
from deid.egress import go_offline
from serve.consult.service import consult_messages
from serve.engine.gguf_file import embedded_model_path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kb-dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=MEDQUAD)
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    go_offline()
    service = KnowledgeService.open_dir(args.kb_dir, KnowledgeConfig())
    if service is None:
        print(f"no knowledge base at {args.kb_dir}; build it with bench.kb_retrieval --kb-dir", file=sys.stderr)
        return 2
    from llama_cpp import Llama

    llm = Llama(
        model_path=str(embedded_model_path()),
        n_ctx=2048,
        n_threads=args.threads,
        chat_format="chat_template.default",
        seed=0,
        verbose=False,
    )
    with gzip.open(args.data, "rt", encoding="utf-8") as handle:
        records = held_out([json.loads(line) for line in handle], args.questions)

    def answer(messages: list[dict[str, str]]) -> str:
        out = llm.create_chat_completion(messages=messages, max_tokens=args.max_tokens, temperature=0.0)
        return str(out["choices"][0]["message"]["content"] or "")

    scores: dict[str, list[float]] = {"without retrieval": [], "with retrieval": []}
    cited = grounded_count = 0
    started = time.perf_counter()
    for number, record in enumerate(records, start=1):
        plain = consult_messages(record["question"], None)
        grounded = service.ground(record["question"], plain)
        grounded_count += bool(grounded.citations)
        scores["without retrieval"].append(rouge_l(answer(plain), record["answer"]))
        reply = answer(grounded.messages)
        cited += bool(re.search(r"\[\d+\]", reply))
        scores["with retrieval"].append(rouge_l(reply, record["answer"]))
        print(f"\r{number}/{len(records)} questions", end="", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    service.close()

    n = len(records)
    base = sum(scores["without retrieval"]) / n
    print(f"\n{n} held-out MedQuAD questions, embedded SmolLM2-135M (greedy, {args.max_tokens} tokens max)")
    for name, values in scores.items():
        mean = sum(values) / n
        print(f"{name:<18} ROUGE-L {mean:.3f}  ({mean / base if base else float('nan'):.2f}x vs without)")
    wins = sum(g > p for g, p in zip(scores["with retrieval"], scores["without retrieval"], strict=True))
    print(f"retrieval helped on {wins}/{n}; {grounded_count}/{n} prompts had citations; {cited}/{n} answers cite [n]")
    print(f"{elapsed:.0f} s for {2 * n} generations")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
