"""Load test of the consultation API against calling llama.cpp directly, same GGUF, same run.

Prints, for a fixed number of requests at each concurrency level: HTTP 5xx count, p50/p99
latency and aggregate completion tokens per second; then the two speed bars:

- streaming through the API vs llama-cpp-python's own ``Llama`` streaming (bar: >= 0.95x),
- aggregate tokens/s with 8 concurrent clients vs 1 client (bar: >= 2x; llama-cpp-python's
  server runs one request at a time, so it stays near 1x).

and, to read the 8-client ratio against, what bare ``llama_decode`` gains from running 8 sequences
at a time on this machine: for decode steps alone, and for whole requests (prompt prefill plus
decode, with and without the chat preamble the API computes once). The API reuses that
preamble's KV cache; the direct ``Llama`` baseline is reset and recomputes its whole prompt.

The server runs as ``appliance serve`` in a child process so the client's Python does not share
its interpreter. Usage: ``python -m bench.serve_load [--requests 16] [--max-tokens 48] [--rounds 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

PROMPTS = [
    "Explain in detail the causes, symptoms and treatment of type 2 diabetes.",
    "Describe the pathophysiology and management of community-acquired pneumonia.",
    "Explain how beta blockers work and when they are used in heart failure.",
    "Describe the stages of chronic kidney disease and how each is managed.",
    "Explain the differences between asthma and COPD in diagnosis and treatment.",
    "Describe the initial assessment and treatment of a patient with sepsis.",
    "Explain the risk factors, screening and prevention of colorectal cancer.",
    "Describe how hypertension is diagnosed and the first-line medications used.",
]


@dataclass
class Result:
    status: int
    latency: float
    tokens: int


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class DirectLlama:
    """llama-cpp-python's high-level streaming on the same file: the baseline the API must match."""

    def __init__(self, model: Path, threads: int, context: int) -> None:
        import llama_cpp

        self.llm = llama_cpp.Llama(str(model), n_ctx=context, n_threads=threads, n_threads_batch=threads,
                                   chat_format="chat_template.default", verbose=False)

    def tokens_per_second(self, max_tokens: int) -> float:
        # Forget the previous run: Llama would otherwise reuse the cached prompt and skip its prefill,
        # which the API (fresh sequence per request) does not get.
        self.llm.reset()
        started = time.perf_counter()
        tokens = 0
        for chunk in self.llm.create_chat_completion(
            [{"role": "user", "content": PROMPTS[0]}], max_tokens=max_tokens, temperature=0.0, stream=True
        ):
            if chunk["choices"][0]["delta"].get("content"):
                tokens += 1
        return tokens / (time.perf_counter() - started)


async def one_request(client: httpx.AsyncClient, model_id: str, prompt: str, max_tokens: int) -> Result:
    body = {"model": model_id, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0.0, "stream": True, "stream_options": {"include_usage": True}}
    started = time.perf_counter()
    tokens = 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            await response.aread()
            return Result(response.status_code, time.perf_counter() - started, 0)
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
    return Result(200, time.perf_counter() - started, tokens)


async def load_level(base: str, key: str, model_id: str, clients: int, requests: int, max_tokens: int
                     ) -> tuple[list[Result], float]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(requests):
        queue.put_nowait(index)
    results: list[Result] = []
    limits = httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=600,
                                 limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                index = queue.get_nowait()
                results.append(await one_request(client, model_id, PROMPTS[index % len(PROMPTS)], max_tokens))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return results, time.perf_counter() - started


def start_server(home: Path, model: Path, port: int, threads: int, parallel: int, context: int,
                 detect_phi: bool) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    env.update({
        "APPLIANCE_HOME": str(home),
        "APPLIANCE_SERVE__THREADS": str(threads),
        "APPLIANCE_SERVE__PARALLEL": str(parallel),
        "APPLIANCE_SERVE__CONTEXT_LENGTH": str(context),
        "APPLIANCE_SERVE__QUEUE_SIZE": "256",
        "APPLIANCE_SERVE__RATE_LIMIT_PER_MINUTE": "0",
        "APPLIANCE_SERVE__DETECT_PHI": "true" if detect_phi else "false",
    })
    command = [str(Path(sys.executable).with_name("appliance")), "serve", "--model", str(model), "--port", str(port)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class BareDecoder:
    """Bare ``llama_decode`` on the served file: no sampling, text, HTTP or scheduler.

    What any server could reach on this machine, so the API's 8-client ratio can be read against
    what the hardware allows. Decode steps alone batch well; prompt prefill is already a big
    batch for one request, so on a CPU short of arithmetic it gains little from company, and the
    ceiling for whole requests (prefill + decode) is lower than the decode-only one.
    """

    def __init__(self, model: Path, threads: int) -> None:
        from serve.engine.llama_model import LoadedModel

        self.model = LoadedModel.load(model)
        self.threads = threads
        # Tokenized as the API does: the template's markers as control tokens, the content as text.
        self.prompts = [self.model.tokenize_chat([{"role": "user", "content": p}]) for p in PROMPTS]
        preamble = self.model.tokenize(self.model.chat_preamble(), special=True)
        self.shared = next((i for i, (a, b) in enumerate(zip(preamble, self.prompts[0], strict=False)) if a != b),
                           min(len(preamble), len(self.prompts[0])))

    def close(self) -> None:
        self.model.close()

    def rate(self, sequences: int, steps: int, prefill_from: int | None) -> float:
        """Completion tokens/s of ``len(PROMPTS)`` requests run ``sequences`` at a time.

        ``prefill_from`` None: decode steps only; else each prompt's tokens from that index on are
        prefilled first (0: the whole prompt; the shared preamble length: what the API computes).
        """
        import llama_cpp

        params = llama_cpp.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = 256 * sequences, 512, 512
        params.n_seq_max, params.n_threads, params.n_threads_batch = sequences, self.threads, self.threads
        context = llama_cpp.llama_init_from_model(self.model.handle, params)
        memory = llama_cpp.llama_get_memory(context)
        batch = llama_cpp.llama_batch_init(512, 0, 1)

        def decode(entries: list[tuple[int, int, int, bool]]) -> None:
            for index, (token, position, slot, logits) in enumerate(entries):
                batch.token[index], batch.pos[index], batch.n_seq_id[index] = token, position, 1
                batch.seq_id[index][0], batch.logits[index] = slot, logits
            batch.n_tokens = len(entries)
            if llama_cpp.llama_decode(context, batch) != 0:
                raise RuntimeError("llama_decode failed")

        started = time.perf_counter()
        try:
            for first in range(0, len(self.prompts), sequences):
                group = self.prompts[first:first + sequences]
                llama_cpp.llama_memory_clear(memory, True)
                start = [0 if prefill_from is None else len(prompt) for prompt in group]
                if prefill_from is not None:
                    decode([(token, position, slot, position == len(prompt) - 1)
                            for slot, prompt in enumerate(group)
                            for position, token in enumerate(prompt) if position >= prefill_from])
                for step in range(steps):
                    decode([(100 + slot, start[slot] + step, slot, True) for slot in range(len(group))])
        finally:
            llama_cpp.llama_batch_free(batch)
            llama_cpp.llama_free(context)
        return len(self.prompts) * steps / (time.perf_counter() - started)


def bare_ceilings(model: Path, threads: int, steps: int, rounds: int = 2) -> dict[str, tuple[float, float]]:
    """Median 1-at-a-time and 8-at-a-time rates per workload, the two measured alternately."""
    decoder = BareDecoder(model, threads)
    workloads = {
        "decode steps only": None,
        "whole requests (prefill + decode)": 0,
        f"whole requests, {decoder.shared}-token chat preamble computed once (as the API does)": decoder.shared,
    }
    try:
        rates: dict[str, tuple[float, float]] = {}
        for name, prefill_from in workloads.items():
            runs = [(decoder.rate(1, steps, prefill_from), decoder.rate(8, steps, prefill_from))
                    for _ in range(rounds)]
            rates[name] = (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
        return rates
    finally:
        decoder.close()


def main() -> int:
    from serve.auth.keys import ApiKeyStore
    from serve.auth.protocol import Role
    from serve.engine.gguf_file import embedded_model_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="GGUF (default: the embedded model)")
    parser.add_argument("--requests", type=int, default=16, help="requests per concurrency level")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--levels", default="1,4,8,16")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--context", type=int, default=512)
    parser.add_argument("--pairs", type=int, default=5, help="interleaved direct/API single-client runs")
    parser.add_argument("--rounds", type=int, default=2, help="times each concurrency level runs, interleaved")
    parser.add_argument("--detect-phi", action="store_true", help="screen prompts with the PHI detector")
    args = parser.parse_args()
    model = args.model or embedded_model_path()
    levels = [int(level) for level in args.levels.split(",")]

    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          "(ratios are only meaningful on an otherwise idle machine)")
    direct = DirectLlama(model, args.threads, args.context)

    with tempfile.TemporaryDirectory(prefix="serve-bench-") as home_dir:
        home = Path(home_dir)
        key, _ = ApiKeyStore(home / "api-keys.json").create(Role.clinician, "bench")
        port = free_port()
        server = start_server(home, model, port, args.threads, max(levels), args.context, args.detect_phi)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    ready = httpx.get(f"{base}/readyz", timeout=2)
                    if ready.status_code == 200:
                        model_id = ready.json()["model"]
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    print("the server did not start", file=sys.stderr)
                    return 1
                time.sleep(0.2)

            # Interleave direct and API runs (same prompt, greedy, same length) so load drift hits both.
            direct.tokens_per_second(args.max_tokens)
            asyncio.run(load_level(base, key, model_id, 1, 1, args.max_tokens))
            pairs = []
            for _ in range(args.pairs):
                alone = direct.tokens_per_second(args.max_tokens)
                result = asyncio.run(load_level(base, key, model_id, 1, 1, args.max_tokens))[0][0]
                pairs.append((alone, result.tokens / result.latency))
            direct_rate = statistics.median(p[0] for p in pairs)
            api_single = statistics.median(p[1] for p in pairs)
            stream_ratio = statistics.median(p[1] / p[0] for p in pairs)
            print(f"direct llama_cpp streaming (1 client): {direct_rate:.1f} tokens/s  "
                  f"[{model.name}, {args.threads} threads, median of {args.pairs}]")
            print(f"API streaming (1 client):              {api_single:.1f} tokens/s")

            # Levels run in rounds (1, 8, ..., then again) so a burst of load from elsewhere hits
            # every level alike; tokens/s is the median over rounds, latencies are pooled.
            runs: dict[int, list[tuple[list[Result], float]]] = {clients: [] for clients in levels}
            for _ in range(args.rounds):
                for clients in levels:
                    runs[clients].append(asyncio.run(
                        load_level(base, key, model_id, clients, args.requests, args.max_tokens)))
            aggregate: dict[int, float] = {}
            print(f"\n{'clients':>7} {'requests':>8} {'5xx':>4} {'4xx':>4} {'p50 s':>7} {'p99 s':>7} {'tokens/s':>9}"
                  f"  (median of {args.rounds} rounds)")
            for clients, level_runs in runs.items():
                results = [r for run_results, _ in level_runs for r in run_results]
                latencies = [r.latency for r in results if r.status == 200]
                aggregate[clients] = statistics.median(sum(r.tokens for r in rs) / wall for rs, wall in level_runs)
                print(f"{clients:>7} {len(results):>8} {sum(r.status >= 500 for r in results):>4} "
                      f"{sum(400 <= r.status < 500 for r in results):>4} {percentile(latencies, 0.5):>7.2f} "
                      f"{percentile(latencies, 0.99):>7.2f} {aggregate[clients]:>9.1f}")
        finally:
            server.terminate()
            server.wait(timeout=60)

    print(f"\nbare llama_decode, 1 vs 8 sequences at a time, {len(PROMPTS)} prompts x {args.max_tokens} tokens "
          "(this machine's ceiling for the 8-client ratio):")
    ceilings = bare_ceilings(model, args.threads, args.max_tokens)
    for name, (single, batched) in ceilings.items():
        print(f"  {name}: {single:.1f} vs {batched:.1f} tokens/s = {batched / single:.2f}x")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print(f"streaming API / direct llama_cpp:  {stream_ratio:.2f}x  (median of paired runs; bar >= 0.95x)")
    if 1 in aggregate and 8 in aggregate:
        ratio = aggregate[8] / aggregate[1]
        single, batched = list(ceilings.values())[-1]
        print(f"aggregate 8 clients / 1 client:    {ratio:.2f}x  (bar >= 2x; "
              f"{ratio / (batched / single):.0%} of the bare whole-request ceiling with the same preamble reuse)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
