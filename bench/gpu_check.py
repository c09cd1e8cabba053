"""One prepared GPU check of training: bf16 LoRA against the stock Trainer, peak GPU memory, a DPO step.

Runs on a CUDA machine with only the torch, transformers and peft already installed there
(nothing is downloaded) in well under 8 minutes on one modern GPU:

* the embedded SmolLM2-135M (dequantized from its GGUF) and a ~1.1B-parameter llama built
  from a config (TinyLlama's shape, random weights: throughput and memory do not depend on
  what the weights know), each trained by ``appliance train`` with its default settings in
  bf16 and by a stock ``transformers.Trainer`` + peft with the same LoRA and batch
  (``bench.train_speed``'s matched runs, one process each);
* the ~1.1B llama again with gradient checkpointing (memory against speed);
* one DPO stage of two steps on MedQuAD preference pairs on top of the embedded model.

It prints a markdown table for the README's hardware section. On a machine without CUDA
it says so, runs only the DPO step on the CPU as a smoke test, and exits 0.

    .venv/bin/python -m bench.gpu_check [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# TinyLlama-1.1B's shape, with the embedded model's vocabulary so its tokenizer serves both
LLAMA_1B = {"hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22, "num_attention_heads": 32,
            "num_key_value_heads": 4, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False}


def build_llama_1b(folder: Path, tokenizer_source: Path) -> Path:
    """A random ~1.1B llama saved as a Hugging Face folder in bf16, with the embedded model's tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from appliance.train.base_model import load_base_model

    tokenizer = load_base_model(tokenizer_source).tokenizer
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **LLAMA_1B)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    del model
    torch.cuda.empty_cache()
    return folder


def preference_file(path: Path, count: int = 20) -> Path:
    """MedQuAD pairs: the question's own answer is chosen, the next question's answer rejected."""
    from appliance.dataset.qa import read_qa_file
    from bench.train_speed import QA_FILE

    dialogues = read_qa_file(QA_FILE)[:count]
    rows = []
    for index, dialogue in enumerate(dialogues):
        other = dialogues[(index + 1) % len(dialogues)]
        rows.append({"prompt": dialogue.messages[0]["content"][:600], "chosen": dialogue.messages[1]["content"][:600],
                     "rejected": other.messages[1]["content"][:600]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def dpo_step(model: Path, workdir: Path) -> dict[str, Any]:
    import torch

    from appliance.config import load_settings
    from appliance.train.config import Method
    from appliance.train.stage import train_stage

    settings = load_settings(train={"max_steps": 2, "batch_size": 4, "overlong": "truncate", "max_seq_length": 256,
                                    "checkpoint_interval": 2, "cpu_threads": None if torch.cuda.is_available() else 2})
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    result = train_stage(settings, dataset_dir=workdir, base_model=model, workdir=workdir, method=Method.dpo,
                         preferences=preference_file(workdir / "prefs.jsonl"))
    details = result.manifest.details
    return {"seconds": round(time.perf_counter() - started, 1), "peak_bytes": details["peak_memory_bytes"],
            "tokens_per_s": details["tokens_per_second"], "precision": details["precision"],
            "accuracy": f"{details['preference_accuracy_before']} -> {details['preference_accuracy_after']}",
            "margin": details["mean_reward_margin"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per throughput run")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    # every load below is local_files_only; the throughput runs are bench.train_speed children,
    # which also install the appliance's socket guard
    os.environ.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    import torch

    from bench.train_speed import _child, _dataset
    from serve.engine.gguf_file import embedded_model_path

    embedded = embedded_model_path()
    scratch = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    began = time.perf_counter()
    if not torch.cuda.is_available():
        print("no CUDA GPU on this machine: skipping the bf16 throughput and GPU-memory checks; "
              "running the DPO step on the CPU only, as a smoke test")
        result = dpo_step(embedded, scratch / "dpo")
        print(f"DPO step on the CPU: {result['seconds']} s, held-out preference accuracy {result['accuracy']}, "
              f"mean reward margin {result['margin']}")
        return
    gpu = torch.cuda.get_device_name(0)
    print(f"GPU: {gpu}; torch {torch.__version__}, CUDA {torch.version.cuda}, python {platform.python_version()}")
    rows: list[tuple[str, str, dict[str, Any]]] = []
    models = {"SmolLM2-135M (embedded)": embedded,
              "llama ~1.1B (from config)": build_llama_1b(scratch / "llama-1b", embedded)}
    for label, model in models.items():
        runs = argparse.Namespace(model=str(model), steps=args.steps, threads=1, train_json="{}",
                                  dataset=str(_dataset(scratch / f"data-{len(rows)}", model)))
        for which in ("trainer", "appliance"):
            rows.append((label, which, _child(runs, which)))
        if "1.1B" in label:
            runs.train_json = json.dumps({"gradient_checkpointing": True})
            rows.append((label, "appliance + gradient checkpointing", _child(runs, "appliance")))
    dpo = dpo_step(embedded, scratch / "dpo")
    print()
    print(f"Training on one {gpu} (bf16 LoRA r 8, batch 4 x 256, {args.steps} steps; appliance defaults, "
          "Trainer matched):")
    print()
    print("| model | trainer | tokens/s | vs Trainer | peak GPU memory (MiB) | vs Trainer |")
    print("|---|---|---:|---:|---:|---:|")
    baseline: dict[str, dict[str, Any]] = {}
    for label, which, result in rows:
        if which == "trainer":
            baseline[label] = result
        base = baseline[label]
        name = "transformers Trainer + peft" if which == "trainer" else f"appliance train{which[9:]}"
        print(f"| {label} | {name} | {result['tokens_per_s']:.0f} | {result['tokens_per_s'] / base['tokens_per_s']:.2f}x "
              f"| {result['peak_bytes'] / 2**20:.0f} | {result['peak_bytes'] / base['peak_bytes']:.2f}x |")
    print(f"| SmolLM2-135M (embedded) | appliance DPO, 2 steps | {dpo['tokens_per_s']:.0f} | - | "
          f"{dpo['peak_bytes'] / 2**20:.0f} | - |")
    print()
    print(f"DPO ({dpo['precision']}): {dpo['seconds']} s for the stage, held-out preference accuracy "
          f"{dpo['accuracy']}, mean reward margin {dpo['margin']}")
    print(f"total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
