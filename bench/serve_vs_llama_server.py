"""The consultation API side by side with llama.cpp's own server, same GGUF, same threads, one run.

The anchor is llama.cpp's C++ server built from the llama.cpp that llama-cpp-python vendors (its
sdist's ``vendor/llama.cpp``, see ``build_anchor``). It is built once into a git-ignored folder
and never needed at run time. Both servers are loaded by the official OpenAI SDK with the same
chat requests (greedy, same ``max_tokens``); levels and servers alternate round by round so load
from elsewhere on a shared machine hits both alike; tokens/s is completion tokens over wall time,
median over rounds.

Then, to say where a single stream's time goes, the same request measured layer by layer:
bare ``llama_decode`` (the hardware ceiling of llama-cpp-python's libllama), the batch engine
without HTTP (adds scheduling, sampling, detokenization), and the API (adds HTTP, JSON or SSE,
auth, the ledger). Findings are written down in ``bench/SERVING.md``.

Usage: ``python -m bench.serve_vs_llama_server [--llama-server PATH] [--requests 16] [--max-tokens 64]
[--threads 2] [--rounds 3] [--stream] [--profile]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.serve_load import PROMPTS, BareDecoder, free_port, start_server

REPO = Path(__file__).resolve().parents[1]
ANCHOR_DIR = REPO / ".gl"
LLAMA_CPP_PYTHON = "0.3.36"
ANCHOR_FLAGS = [
    "-DGGML_NATIVE=OFF", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON", "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_CURL=OFF", "-DBUILD_SHARED_LIBS=OFF",
]


def anchor_binary() -> Path:
    return ANCHOR_DIR / f"llama_cpp_python-{LLAMA_CPP_PYTHON}" / "vendor" / "llama.cpp" / "build" / "bin" / "llama-server"


def build_anchor() -> Path:
    """Download the sdist (PyPI, its ordinary client) and build llama-server once (6+ min on 2 cores)."""
    binary = anchor_binary()
    if binary.exists():
        return binary
    ANCHOR_DIR.mkdir(exist_ok=True)
    sdist = ANCHOR_DIR / f"llama_cpp_python-{LLAMA_CPP_PYTHON}.tar.gz"
    if not sdist.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", f"llama-cpp-python=={LLAMA_CPP_PYTHON}",
                        "--no-deps", "--no-binary", ":all:", "-d", str(ANCHOR_DIR)], check=True)
    subprocess.run(["tar", "xzf", sdist.name], cwd=ANCHOR_DIR, check=True)
    source = ANCHOR_DIR / f"llama_cpp_python-{LLAMA_CPP_PYTHON}" / "vendor" / "llama.cpp"
    subprocess.run(["cmake", "-B", "build", *ANCHOR_FLAGS], cwd=source, check=True)
    subprocess.run(["cmake", "--build", "build", "--target", "llama-server", f"-j{os.cpu_count() or 1}"],
                   cwd=source, check=True)
    return binary


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"server at {url} did not start")
        time.sleep(0.2)


async def level(base: str, key: str, model: str, clients: int, requests: int, max_tokens: int, stream: bool
                ) -> tuple[float, int]:
    """Completion tokens/s of ``requests`` chat requests, ``clients`` at a time, and the 5xx count."""
    import openai

    sdk = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0, timeout=600)
    pending = list(range(requests))
    tokens = failures = 0

    async def worker() -> None:
        nonlocal tokens, failures
        while pending:
            index = pending.pop()
            messages = [{"role": "user", "content": PROMPTS[index % len(PROMPTS)]}]
            try:
                if stream:
                    async for chunk in await sdk.chat.completions.create(
                        model=model, messages=messages, max_tokens=max_tokens, temperature=0, stream=True,
                        stream_options={"include_usage": True},
                    ):
                        if chunk.usage is not None:
                            tokens += chunk.usage.completion_tokens
                else:
                    answer = await sdk.chat.completions.create(
                        model=model, messages=messages, max_tokens=max_tokens, temperature=0)
                    tokens += answer.usage.completion_tokens if answer.usage else 0
            except openai.APIError as error:
                failures += 1
                print(f"  {base}: {type(error).__name__} {getattr(error, 'status_code', '')}", file=sys.stderr)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    wall = time.perf_counter() - started
    await sdk.close()
    return tokens / wall, failures


def engine_rate(model: Path, threads: int, max_tokens: int, rounds: int) -> float:
    """The batch engine alone, one request at a time: no HTTP, no JSON, no auth, no ledger."""
    from serve.engine.llama_model import LoadedModel
    from serve.engine.sampling import SamplingParams
    from serve.engine.scheduler import BatchEngine

    loaded = LoadedModel.load(model)
    prompt = loaded.tokenize_chat([{"role": "user", "content": PROMPTS[0]}])

    async def run() -> float:
        engine = BatchEngine(loaded, parallel=8, context_length=512, batch_tokens=512, threads=threads, queue_size=8)
        try:
            rates = []
            for _ in range(rounds + 1):
                started = time.perf_counter()
                generation = engine.submit(prompt, SamplingParams(max_tokens=max_tokens, temperature=0.0))
                last = [event async for event in generation.events()][-1]
                rates.append(last.completion_tokens / (time.perf_counter() - started))
            return statistics.median(rates[1:])
        finally:
            engine.close()

    try:
        return asyncio.run(run())
    finally:
        loaded.close()


def main() -> int:
    from serve.auth.keys import ApiKeyStore
    from serve.auth.protocol import Role
    from serve.engine.gguf_file import embedded_model_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llama-server", type=Path, default=None, help="anchor binary (default: build it once)")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stream", action="store_true", help="stream the answers (SSE) instead of whole JSON")
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--profile", action="store_true", help="also measure one stream layer by layer")
    args = parser.parse_args()
    model = embedded_model_path()
    binary = args.llama_server or build_anchor()
    model_id = model.name.removesuffix(".gguf")
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (a shared machine: "
          "ratios come from interleaved rounds; absolute numbers move with the load)")

    with tempfile.TemporaryDirectory(prefix="serve-vs-") as home_dir:
        home = Path(home_dir)
        key, _ = ApiKeyStore(home / "api-keys.json").create(Role.clinician, "bench")
        api_port, anchor_port = free_port(), free_port()
        appliance = start_server(home, model, api_port, args.threads, args.parallel, 512, detect_phi=False)
        anchor = subprocess.Popen(
            [str(binary), "-m", str(model), "-t", str(args.threads), "-np", str(args.parallel),
             "-c", str(512 * args.parallel), "--jinja", "--host", "127.0.0.1", "--port", str(anchor_port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        servers = {"appliance": (f"http://127.0.0.1:{api_port}", key, model_id),
                   "llama-server": (f"http://127.0.0.1:{anchor_port}", "none", model_id)}
        print("servers: " + ", ".join(f"{name} {base}" for name, (base, _, _) in servers.items()))
        try:
            wait_ready(f"{servers['appliance'][0]}/readyz", appliance)
            wait_ready(f"{servers['llama-server'][0]}/health", anchor)
            for base, token, name in servers.values():  # warm both (first requests page weights in)
                asyncio.run(level(base, token, name, 1, 2, 8, args.stream))
            rates: dict[tuple[str, int], list[float]] = {}
            failures = 0
            for round_index in range(args.rounds):
                for clients in (1, 8):
                    order = list(servers) if round_index % 2 == 0 else list(reversed(servers))
                    for server in order:
                        base, token, name = servers[server]
                        rate, failed = asyncio.run(level(base, token, name, clients, args.requests, args.max_tokens,
                                                         args.stream))
                        rates.setdefault((server, clients), []).append(rate)
                        failures += failed
        finally:
            for process in (appliance, anchor):
                process.terminate()
                process.wait(timeout=60)

    median = {key: statistics.median(values) for key, values in rates.items()}
    mode = "streaming" if args.stream else "whole answers"
    print(f"\n{args.requests} chat requests x {args.max_tokens} tokens, {mode}, {args.threads} threads, "
          f"-np {args.parallel}, median of {args.rounds} rounds; 5xx/errors: {failures}")
    for clients in (1, 8):
        ours, theirs = median[("appliance", clients)], median[("llama-server", clients)]
        bar = 0.95 if clients == 1 else 1.0
        print(f"  {clients} client(s): appliance {ours:.1f} tokens/s, llama-server {theirs:.1f} = {ours / theirs:.2f}x "
              f"(bar >= {bar}x)   rounds: {[round(v, 1) for v in rates[('appliance', clients)]]} vs "
              f"{[round(v, 1) for v in rates[('llama-server', clients)]]}")
    print(f"  appliance 8 / 1 clients: {median[('appliance', 8)] / median[('appliance', 1)]:.2f}x (bar >= 1.6x)")

    if not args.profile:
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        return 0
    print("\nwhere one stream's time goes (same prompt, greedy, one request at a time):")
    decoder = BareDecoder(model, args.threads)
    try:
        bare = statistics.median(decoder.rate(1, args.max_tokens, decoder.shared) for _ in range(args.rounds))
    finally:
        decoder.close()
    engine = engine_rate(model, args.threads, args.max_tokens, args.rounds)
    api = median[("appliance", 1)]
    print(f"  bare llama_decode (prefill + decode):  {bare:.1f} tokens/s")
    print(f"  batch engine, no HTTP:                 {engine:.1f} tokens/s ({engine / bare:.0%} of bare)")
    print(f"  API through the SDK:                   {api:.1f} tokens/s ({api / bare:.0%} of bare)")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
