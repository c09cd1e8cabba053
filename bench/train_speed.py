"""LoRA training throughput: ``appliance train`` vs a plain transformers ``Trainer`` + peft loop.

The appliance runs its DEFAULT training settings (only the step count and the thread count
are set); the Trainer gets the same LoRA rank, alpha, dropout and target modules, learning
rate, schedule, warm-up, clipping, batch size and seed. Both see the same SFT examples
(the MedQuAD sample, loss masked to the answers, examples longer than the context left
out of the file both read). Each run is its own process so its peak memory (RSS of the
whole process on a CPU, allocated memory on a GPU) is its own, and runs alternate over
``--rounds`` so a burst of load from elsewhere on the machine hits both; the figures are
medians. Throughput counts real (non-padding) tokens over the training steps only (model
loading excluded on both sides); the Trainer pads each batch to its longest example, the
appliance packs examples into windows.

    .venv/bin/python -m bench.train_speed [--model PATH] [--steps 10] [--threads 1] [--rounds 2]

Without ``--model`` a tiny llama is built on the fly (seconds); pass the embedded GGUF
(``serve.engine.gguf_file.embedded_model_path()``) for the demo model (minutes on a CPU).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
QA_FILE = REPO / "appliance" / "data" / "medquad-sample.jsonl"


def _settings(args: argparse.Namespace) -> Any:
    """The appliance's defaults; only what the machine and the bench's length decide is set."""
    from appliance.config import load_settings

    extra = json.loads(getattr(args, "train_json", None) or "{}")  # bench.gpu_check varies a setting or two
    return load_settings(train={"max_steps": args.steps, "checkpoint_interval": args.steps,
                                "cpu_threads": args.threads, **extra})


def _dataset(workdir: Path, model: Path) -> Path:
    """The MedQuAD sample as a built dataset folder, without the examples longer than the context."""
    from appliance.dataset.qa import read_qa_file
    from appliance.dataset.recipes import dialogue_examples
    from appliance.train.base_model import load_base_model
    from appliance.train.data import chat_sequence

    limit = _settings(argparse.Namespace(steps=1, threads=1)).train.max_seq_length
    tokenizer = load_base_model(model).tokenizer
    rows = [e.record() for e in dialogue_examples(read_qa_file(QA_FILE), "qa")]
    rows = [r for r in rows if len(chat_sequence(tokenizer, r["messages"], mask_prompt=True).input_ids) <= limit]
    folder = workdir / "dataset"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _peak(device: str) -> int:
    import resource

    import torch

    if device == "cuda":
        return int(torch.cuda.max_memory_allocated())
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def run_appliance(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from appliance.train.stage import train_stage

    workdir = Path(tempfile.mkdtemp(prefix="bench-train-"))
    cpu_started = time.process_time()
    result = train_stage(_settings(args), dataset_dir=Path(args.dataset), base_model=Path(args.model),
                         workdir=workdir)
    summary = result.manifest.details
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return {"tokens_per_s": summary["tokens_per_second"], "tokens": summary["tokens"], "peak_bytes": _peak(device),
            "final_loss": summary["final_train_loss"], "cpu_s_all": round(time.process_time() - cpu_started, 1)}


def run_trainer(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        DataCollatorForSeq2Seq,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from appliance.train.base_model import default_target_modules, load_base_model
    from appliance.train.config import TrainMode
    from appliance.train.data import read_examples, tokenize

    config = _settings(args).train
    torch.set_num_threads(args.threads)
    torch.manual_seed(config.seed)
    workdir = Path(tempfile.mkdtemp(prefix="bench-trainer-"))
    cpu_started = time.process_time()
    gpu = torch.cuda.is_available()
    bf16 = gpu and torch.cuda.is_bf16_supported()
    # on a GPU both sides hold the base in the compute dtype and train in mixed precision
    loaded = load_base_model(Path(args.model), dtype=(torch.bfloat16 if bf16 else torch.float16) if gpu else torch.float32)
    if gpu:
        loaded.model.to("cuda")
    sequences = tokenize(read_examples(Path(args.dataset) / "train.jsonl"), loaded.tokenizer, config, TrainMode.sft)
    features = [{"input_ids": s.input_ids, "labels": s.labels, "attention_mask": [1] * len(s.input_ids)}
                for s in sequences]
    model = get_peft_model(loaded.model, LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=config.target_modules or default_target_modules(loaded.architecture), task_type="CAUSAL_LM"))
    padder = DataCollatorForSeq2Seq(loaded.tokenizer, padding=True, label_pad_token_id=-100)
    counted = {"tokens": 0, "seconds": 0.0, "began": 0.0}

    def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
        out = padder(batch)
        counted["tokens"] += int(out["attention_mask"].sum())
        return out

    class StepClock(TrainerCallback):
        """Times the training steps only, as the appliance's loop does (not set-up, not saving)."""

        def on_step_begin(self, *_: Any, **__: Any) -> None:
            counted["began"] = time.perf_counter()

        def on_step_end(self, *_: Any, **__: Any) -> None:
            counted["seconds"] += time.perf_counter() - counted["began"]

    training_args = TrainingArguments(
        output_dir=str(workdir / "out"), per_device_train_batch_size=config.batch_size, max_steps=args.steps,
        gradient_accumulation_steps=config.gradient_accumulation_steps, learning_rate=config.learning_rate,
        lr_scheduler_type=config.schedule.value, warmup_steps=config.warmup_steps, weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm, logging_steps=args.steps, save_strategy="no", report_to=[],
        dataloader_num_workers=0, remove_unused_columns=False, use_cpu=not gpu, bf16=bf16, fp16=gpu and not bf16,
        gradient_checkpointing=config.gradient_checkpointing, disable_tqdm=True, seed=config.seed,
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=features, data_collator=collate,
                      callbacks=[StepClock()])
    output = trainer.train()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return {"tokens_per_s": round(counted["tokens"] / counted["seconds"], 2), "tokens": counted["tokens"],
            "peak_bytes": _peak(device), "final_loss": round(float(output.training_loss), 6),
            "cpu_s_all": round(time.process_time() - cpu_started, 1)}


def _child(args: argparse.Namespace, which: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.train_speed", "--child", which, "--model", args.model,
               "--steps", str(args.steps), "--threads", str(args.threads), "--dataset", args.dataset,
               "--train-json", getattr(args, "train_json", None) or "{}"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{which} run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="HF folder or .gguf; default: a tiny llama built now")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs of each; medians are reported")
    parser.add_argument("--child", choices=["appliance", "trainer"], help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--train-json", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        from deid.egress import go_offline

        go_offline()
        print(json.dumps(run_trainer(args) if args.child == "trainer" else run_appliance(args)))
        return
    if args.model is None:
        sys.path.insert(0, str(REPO))
        from tests.support.tiny_model import build_tiny_llama

        args.model = str(build_tiny_llama(Path(tempfile.mkdtemp(prefix="bench-tiny-")) / "model"))
    args.dataset = str(_dataset(Path(tempfile.mkdtemp(prefix="bench-data-")), Path(args.model)))
    config = _settings(args).train
    print(f"model {Path(args.model).name}, {args.steps} steps, appliance defaults: batch {config.batch_size} x "
          f"{config.max_seq_length}, LoRA r {config.lora_r}, packing {config.packing}; {args.threads} thread(s), "
          f"{args.rounds} round(s)")
    runs: dict[str, list[dict[str, Any]]] = {"trainer": [], "appliance": []}
    for round_ in range(args.rounds):
        for name in (("trainer", "appliance") if round_ % 2 == 0 else ("appliance", "trainer")):
            runs[name].append(_child(args, name))
    results = {name: {key: statistics.median(r[key] for r in rows) for key in rows[0]} for name, rows in runs.items()}
    base = results["trainer"]
    print(f"{'run':<34}{'tokens/s':>10}{'peak MiB':>10}{'speed':>8}{'memory':>8}{'loss':>9}")
    labels = {"trainer": "transformers Trainer + peft (pad)", "appliance": "appliance train (defaults)"}
    for name, result in results.items():
        print(f"{labels[name]:<34}{result['tokens_per_s']:>10.1f}{result['peak_bytes'] / 2**20:>10.0f}"
              f"{result['tokens_per_s'] / base['tokens_per_s']:>8.2f}{result['peak_bytes'] / base['peak_bytes']:>8.2f}"
              f"{result['final_loss']:>9.3f}")
    speed = results["appliance"]["tokens_per_s"] / base["tokens_per_s"]
    memory = results["appliance"]["peak_bytes"] / base["peak_bytes"]
    verdict = "PASS" if speed >= 1.0 and memory <= 1.0 else "FAIL"
    print(f"appliance/Trainer: throughput {speed:.2f}x (bar >= 1.0), peak memory {memory:.2f}x (bar <= 1.0) -> {verdict}")


if __name__ == "__main__":
    main()
