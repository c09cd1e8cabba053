"""Decode speed and file size of each quantization against F16, measured in the same run.

    .venv/bin/python -m bench.quant_speed [--export-dir DIR] [--tokens 64] [--threads 2]

Without ``--export-dir`` it exports the embedded SmolLM2 (no adapter) into a temporary work
directory first (about a minute and a half on 2 cores); with one, it reuses a finished export stage.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

PROMPT = "Question: What are the common symptoms and first-line treatments of community acquired pneumonia?\nAnswer:"


def _export(workdir: Path, threads: int) -> Path:
    from appliance.config import load_settings
    from appliance.export.stage import export_stage
    from serve.engine.gguf_file import embedded_model_path

    settings = load_settings(home=workdir / "home", export={"quantizations": ["Q8_0", "Q5_K_M", "Q4_K_M"], "threads": threads})
    result = export_stage(settings, base_model=embedded_model_path(), adapter_dir=None, workdir=workdir,
                          progress=lambda message: print(f"  export: {message}", flush=True))
    return result.directory


def _decode_speed(path: Path, tokens: int, threads: int) -> tuple[float, int]:
    from appliance.export.runners import LlamaCppRunner

    runner = LlamaCppRunner(path, context_length=512, threads=threads)
    try:
        ids = runner.tokenize(PROMPT)
        runner.logits(ids)  # prefill outside the timed part: this measures decoding
        start = time.perf_counter()
        produced = runner.greedy(ids, tokens)
        return len(produced) / (time.perf_counter() - start), len(produced)
    finally:
        runner.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-dir", type=Path, help="a finished <workdir>/export directory")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from appliance.export.quantize import quantize_gguf

    with tempfile.TemporaryDirectory(prefix="bench-quant-") as scratch:
        export_dir = args.export_dir or _export(Path(scratch) / "work", args.threads)
        parity = json.loads((export_dir / "parity.json").read_text())
        reference = export_dir / parity["reference"]["file"]
        f16 = reference if parity["reference"]["type"] == "F16" else quantize_gguf(reference, Path(scratch) / "model-F16.gguf", "F16", args.threads)
        files = {"F16": f16, **{q["type"]: export_dir / q["file"] for q in parity["quantizations"]}}
        baseline_speed, _ = _decode_speed(f16, args.tokens, args.threads)
        baseline_size = f16.stat().st_size
        print(f"{'type':8} {'size MB':>9} {'size/F16':>9} {'tok/s':>8} {'speed/F16':>10} {'ppl +%':>8}")
        for name, path in files.items():
            speed, _produced = (baseline_speed, 0) if name == "F16" else _decode_speed(path, args.tokens, args.threads)
            size = path.stat().st_size
            increase = next((q["increase"] for q in parity["quantizations"] if q["type"] == name), None)
            shown = f"{increase:+.1%}" if increase is not None else "-"
            print(f"{name:8} {size / 1e6:9.1f} {size / baseline_size:9.2f} {speed:8.1f} {speed / baseline_speed:10.2f} {shown:>8}")
        for refused in parity["refused"]:
            print(f"{refused['type']:8} refused by the perplexity gate ({refused['increase']:+.1%})")


if __name__ == "__main__":
    main()
