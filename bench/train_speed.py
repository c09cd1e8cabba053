"""LoRA training throughput: ``appliance train`` vs a plain transformers ``Trainer`` + peft loop.

Same base model, same SFT examples (MedQuAD sample, loss masked to the answers), same LoRA
settings, batch size, steps, schedule and thread count. Each trainer runs in its own
process so peak memory (RSS on a CPU, allocated memory on a GPU) is its own. Throughput is
real (non-padding) tokens per second of training; the baseline pads every batch to its
longest example, the appliance packs examples into full windows.

    .venv/bin/python -m bench.train_speed [--model PATH] [--steps 10] [--threads 1]

Without ``--model`` a tiny llama is built on the fly (seconds); pass the embedded GGUF
(``appliance.models.embedded_model_path()``) for the demo model (minutes on a CPU).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
QA_FILE = REPO / "appliance" / "data" / "medquad-sample.jsonl"


def _settings(args: argparse.Namespace, *, packing: bool) -> Any:
    from appliance.config import load_settings

    return load_settings(train={
        "max_steps": args.steps, "batch_size": args.batch, "max_seq_length": args.seq, "packing": packing,
        "group_by_length": False, "overlong": "drop", "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.05,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"], "learning_rate": 2e-4, "warmup_steps": 1,
        "schedule": "cosine", "eval_interval": 0, "checkpoint_interval": args.steps, "cpu_threads": args.threads,
        "mode": "sft",
    })


def _dataset(workdir: Path) -> Path:
    """The MedQuAD sample as a built dataset folder (no validation split, no PHI gate needed)."""
    from appliance.dataset.qa import read_qa_file
    from appliance.dataset.recipes import dialogue_examples

    folder = workdir / "dataset"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [e.record() for e in dialogue_examples(read_qa_file(QA_FILE), "qa")]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _peak(device: str) -> int:
    import resource

    import torch

    if device == "cuda":
        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def run_appliance(args: argparse.Namespace, *, packing: bool) -> dict[str, Any]:
    import torch

    from appliance.train.stage import train_stage

    workdir = Path(tempfile.mkdtemp(prefix="bench-train-"))
    result = train_stage(_settings(args, packing=packing), dataset_dir=_dataset(workdir),
                         base_model=Path(args.model), workdir=workdir)
    summary = result.manifest.details
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return {"tokens_per_s": summary["tokens_per_second"], "tokens": summary["tokens"], "peak_bytes": _peak(device),
            "final_loss": summary["final_train_loss"]}


def run_trainer(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from appliance.train.base_model import load_base_model
    from appliance.train.data import read_examples, tokenize
    from appliance.train.config import TrainMode

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    workdir = Path(tempfile.mkdtemp(prefix="bench-trainer-"))
    settings = _settings(args, packing=False)
    loaded = load_base_model(Path(args.model))
    sequences = tokenize(read_examples(_dataset(workdir) / "train.jsonl"), loaded.tokenizer, settings.train, TrainMode.sft)
    features = [{"input_ids": s.input_ids, "labels": s.labels, "attention_mask": [1] * len(s.input_ids)}
                for s in sequences]
    model = get_peft_model(loaded.model, LoraConfig(
        r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        task_type="CAUSAL_LM"))
    padder = DataCollatorForSeq2Seq(loaded.tokenizer, padding=True, label_pad_token_id=-100)
    counted = {"tokens": 0}

    def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
        out = padder(batch)
        counted["tokens"] += int(out["attention_mask"].sum())
        return out

    training_args = TrainingArguments(
        output_dir=str(workdir / "out"), per_device_train_batch_size=args.batch, max_steps=args.steps,
        learning_rate=2e-4, lr_scheduler_type="cosine", warmup_steps=1, logging_steps=args.steps,
        save_strategy="no", report_to=[], dataloader_num_workers=0, remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(), disable_tqdm=True, seed=0,
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=features, data_collator=collate)
    started = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - started
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return {"tokens_per_s": round(counted["tokens"] / seconds, 2), "tokens": counted["tokens"],
            "peak_bytes": _peak(device), "final_loss": round(float(output.training_loss), 6)}


def _child(args: argparse.Namespace, which: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.train_speed", "--child", which, "--model", args.model,
               "--steps", str(args.steps), "--threads", str(args.threads), "--batch", str(args.batch),
               "--seq", str(args.seq)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"{which} run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="HF folder or .gguf; default: a tiny llama built now")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", choices=["appliance", "appliance-nopack", "trainer"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        from appliance.offline import go_offline

        go_offline()
        result = run_trainer(args) if args.child == "trainer" else run_appliance(args, packing=args.child == "appliance")
        print(json.dumps(result))
        return
    if args.model is None:
        sys.path.insert(0, str(REPO))
        from tests.support.tiny_model import build_tiny_llama

        args.model = str(build_tiny_llama(Path(tempfile.mkdtemp(prefix="bench-tiny-")) / "model"))
    print(f"model {Path(args.model).name}, {args.steps} steps, batch {args.batch} x {args.seq}, "
          f"{args.threads} thread(s)")
    results = {name: _child(args, name) for name in ("trainer", "appliance", "appliance-nopack")}
    base = results["trainer"]
    print(f"{'run':<34}{'tokens/s':>10}{'peak MiB':>10}{'ratio':>8}{'loss':>9}")
    labels = {"trainer": "transformers Trainer + peft (pad)", "appliance": "appliance train (packing)",
              "appliance-nopack": "appliance train (length groups)"}
    for name, result in results.items():
        ratio = result["tokens_per_s"] / base["tokens_per_s"] if base["tokens_per_s"] else float("nan")
        print(f"{labels[name]:<34}{result['tokens_per_s']:>10.1f}{result['peak_bytes'] / 2**20:>10.0f}"
              f"{ratio:>8.2f}{result['final_loss']:>9.3f}")
    ratio = results["appliance"]["tokens_per_s"] / base["tokens_per_s"]
    print(f"appliance/Trainer throughput ratio: {ratio:.2f} (bar: >= 1.0) -> {'PASS' if ratio >= 1.0 else 'FAIL'}")


if __name__ == "__main__":
    main()
