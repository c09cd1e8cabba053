"""Direct preference optimisation (DPO) on the appliance's own loop, on top of the SFT adapter.

The reference policy is the policy the stage starts from (normally the SFT adapter). Its
log-probabilities of every pair's answers are computed once, before the first step, and
kept with the resume state, so the reference costs one forward pass per pair rather than
a second model in memory, and a resumed run sees exactly the same reference. A fifth of
the pairs (``train.dpo_holdout``) never trains: the share of them whose ``chosen`` answer
the policy finds likelier than ``rejected``, before and after, is the stage's measure.

That share compares the answers' mean log-probability per token, not their sums: a
reference answer of 150 tokens has a far lower summed log-probability than a one-line
refusal however much the model prefers it, so a summed comparison measures answer length
and barely moves when DPO shifts the policy by tens of nats (on MedQuAD pairs whose
rejected answers are half refusals it stayed at 0.5 for 8 steps while every held-out
reward had turned positive). The training loss itself is the standard summed DPO loss;
its reward (the policy's shift from the reference) is reported beside the accuracy.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional

from appliance.pipeline.stage import StageContext
from appliance.train import adapter_model, checkpoint
from appliance.train.base_model import load_base_model
from appliance.train.config import Overlong, TrainConfig
from appliance.train.data import IGNORE, Sequence, chat_sequence, collate, real_tokens
from appliance.train.distributed import DistInfo
from appliance.train.loop import (
    ProgressFn,
    _scheduler,
    optimizer_step,
    peak_memory_bytes,
    resolve_precision,
)
from appliance.train.loss import CausalLMLoss
from deid.errors import InputError

PAIR_KEYS = ("prompt", "chosen", "rejected")
REFERENCE_FILE = "reference.pt"


@dataclass(frozen=True)
class Pair:
    chosen: Sequence
    rejected: Sequence

    def answer_tokens(self) -> tuple[int, int]:
        """Scored tokens of (chosen, rejected): what a per-token comparison divides by."""
        return _scored(self.chosen), _scored(self.rejected)


def _scored(sequence: Sequence) -> int:
    # labels[0] predicts nothing: the loss scores each label from the token before it
    return sum(label != IGNORE for label in sequence.labels[1:])


def read_pairs(path: Path) -> list[dict[str, str]]:
    """``{"prompt", "chosen", "rejected"}`` lines; errors name the line, never its text."""
    if not path.is_file():
        raise InputError(f"preference file not found: {path}")
    pairs: list[dict[str, str]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            raise InputError(f"malformed JSON in {path} at line {number}") from None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) and data[k].strip() for k in PAIR_KEYS):
            raise InputError(f"{path} line {number}: expected non-empty strings prompt, chosen and rejected")
        if data["chosen"].strip() == data["rejected"].strip():
            raise InputError(f"{path} line {number}: chosen and rejected are the same answer")
        pairs.append({k: data[k] for k in PAIR_KEYS})
    return pairs


def preference_inputs(preferences: Path | None, base_model: Path, start: Path | None) -> dict[str, Path]:
    if preferences is None:
        raise InputError("--method dpo needs the preference pairs: --preferences FILE")
    if not Path(preferences).is_file():
        raise InputError(f"preference file not found: {preferences}")
    inputs = {"preferences": Path(preferences), "base_model": base_model}
    if start is not None:
        inputs["start_adapter"] = start
    return inputs


def tokenize_pairs(rows: list[dict[str, str]], tokenizer: Any, config: TrainConfig) -> list[Pair]:
    """Both answers as chats after the prompt, scored only on the answer's tokens.

    An answer that runs past ``max_seq_length`` keeps its beginning (pairs come from
    clinicians and public Q&A, not from the dataset stage that sizes examples to the context);
    ``train.overlong = "drop"`` leaves such pairs out instead. A prompt that leaves no room
    for an answer is an error (or dropped).
    """
    pairs: list[Pair] = []
    no_room = 0
    limit = config.max_seq_length
    for row in rows:
        sides = [chat_sequence(tokenizer, [{"role": "user", "content": row["prompt"]},
                                           {"role": "assistant", "content": row[key]}], mask_prompt=True)
                 for key in ("chosen", "rejected")]
        if all(len(s.input_ids) <= limit for s in sides):
            pairs.append(Pair(*sides))
            continue
        if config.overlong is Overlong.drop:
            continue
        cut = [Sequence(s.input_ids[:limit], s.labels[:limit], False) for s in sides]
        if any(all(label == IGNORE for label in s.labels[1:]) for s in cut):
            no_room += 1
            continue
        pairs.append(Pair(*cut))
    if no_room and config.overlong is not Overlong.drop:
        raise InputError(f"{no_room} preference prompts leave no room for an answer in max_seq_length {limit}; "
                         "raise train.max_seq_length or set train.overlong to 'drop'")
    return pairs


def split(count: int, holdout: float, seed: int) -> tuple[list[int], list[int]]:
    """(training pair indices, held-out pair indices), fixed by the seed."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    held = max(1, round(count * holdout))
    if count - held < 1:
        raise InputError(f"{count} preference pairs are too few: at least 2 are needed (one trains, one is held out)")
    return sorted(order[held:]), sorted(order[:held])


def answer_logps(loss_module: CausalLMLoss, sequences: list[Sequence], *, pad_id: int, device: torch.device,
                 autocast: torch.dtype | None) -> torch.Tensor:
    """Summed log-probability of each sequence's labelled (answer) tokens."""
    batch = {k: v.to(device) for k, v in collate(sequences, pad_id).items()}
    with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
        losses, rows = loss_module(**batch)
    return -torch.zeros(len(sequences), dtype=torch.float32, device=device).index_add(0, rows, losses)


def _all_logps(loss_module: CausalLMLoss, pairs: list[Pair], batch: int, **kwargs: Any) -> torch.Tensor:
    """(pairs, 2) log-probabilities of chosen and rejected, without gradients."""
    loss_module.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(pairs), batch):
            chunk = pairs[start : start + batch]
            values = answer_logps(loss_module, [p.chosen for p in chunk] + [p.rejected for p in chunk], **kwargs)
            out.append(torch.stack([values[: len(chunk)], values[len(chunk) :]], dim=1).cpu())
    loss_module.train()
    return torch.cat(out)


def preference_report(policy: torch.Tensor, reference: torch.Tensor, tokens: torch.Tensor,
                      beta: float) -> dict[str, float]:
    """What the policy prefers on (pairs, 2) summed log-probs of (chosen, rejected), ``tokens`` their answer lengths.

    ``accuracy`` and ``logp_margin`` judge the policy alone, per answer token (see the module
    note); ``reward_*`` and ``loss`` are DPO's own terms, relative to the reference.
    """
    per_token = policy / tokens
    margin = per_token[:, 0] - per_token[:, 1]
    reward = beta * ((policy[:, 0] - reference[:, 0]) - (policy[:, 1] - reference[:, 1]))
    return {
        "accuracy": round(float((margin > 0).float().mean()), 4),
        "logp_margin": round(float(margin.mean()), 6),
        "reward_accuracy": round(float((reward > 0).float().mean()), 4),
        "reward_margin": round(float(reward.mean()), 6),
        "loss": round(float(-functional.logsigmoid(reward).mean()), 6),
    }


def dpo_build(ctx: StageContext, config: TrainConfig, inputs: dict[str, Path], info: DistInfo,
              progress: ProgressFn | None) -> dict[str, Any]:
    if info.enabled:
        raise InputError("the dpo stage runs in one process; start it without torchrun")
    rows = read_pairs(inputs["preferences"])
    device = adapter_model.device_for(info)
    if device.type == "cpu" and config.cpu_threads:
        torch.set_num_threads(config.cpu_threads)
    autocast = resolve_precision(config.precision, device)
    adapter_model.seed_everything(config.seed)
    loaded = load_base_model(inputs["base_model"], dtype=adapter_model.load_dtype(config, device),
                                   quantize_4bit=config.qlora, device_index=info.local_rank,
                                   attention=config.attention.value)
    tokenizer = adapter_model.load_tokenizer(config, loaded.tokenizer)
    adapter_model.check_tokenizer_matches(tokenizer, loaded.model)
    pairs = tokenize_pairs(rows, tokenizer, config)
    train_ids, held_ids = split(len(pairs), config.dpo_holdout, config.seed)
    start = inputs.get("start_adapter")
    model = loaded.model if config.qlora else loaded.model.to(device)
    model = adapter_model.peft_model(model, config, loaded.architecture, quantized=config.qlora, start=start)
    loss_module = CausalLMLoss(model)
    scoring = {"pad_id": tokenizer.pad_token_id, "device": device, "autocast": autocast}
    reference = _reference(ctx.resume_dir, loss_module, pairs, config.batch_size, scoring)
    held_tokens = torch.tensor([pairs[i].answer_tokens() for i in held_ids], dtype=torch.float32)
    before = preference_report(reference[held_ids], reference[held_ids], held_tokens, config.dpo_beta)

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = _scheduler(optimizer, config)
    scaler = torch.amp.GradScaler("cuda") if autocast is torch.float16 else None
    state = checkpoint.Progress()
    saved = checkpoint.load(ctx.resume_dir)
    if saved is not None:
        state, _ = checkpoint.apply(saved, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler)
    resumed_from = state.step
    per_epoch = max(1, len(train_ids) // config.batch_size)
    loss_module.train()
    seconds, session_tokens = 0.0, 0
    while state.step < config.max_steps:
        started = time.perf_counter()
        chosen_micro = []
        for _ in range(config.gradient_accumulation_steps):
            if state.batch_in_epoch >= per_epoch:
                state.epoch, state.batch_in_epoch = state.epoch + 1, 0
            order = list(train_ids)
            random.Random(config.seed * 1_000_003 + state.epoch).shuffle(order)
            size = min(config.batch_size, len(order))
            chosen_micro.append(order[state.batch_in_epoch * size : state.batch_in_epoch * size + size])
            state.batch_in_epoch += 1
        total_pairs = sum(len(m) for m in chosen_micro)
        step_loss, step_tokens, rewards = 0.0, 0, []
        for micro in chosen_micro:
            sequences = [pairs[i].chosen for i in micro] + [pairs[i].rejected for i in micro]
            logps = answer_logps(loss_module, sequences, **scoring)
            ref = reference[micro].to(device)
            reward = config.dpo_beta * ((logps[: len(micro)] - ref[:, 0]) - (logps[len(micro) :] - ref[:, 1]))
            loss = -functional.logsigmoid(reward).sum() / total_pairs
            (scaler.scale(loss) if scaler else loss).backward()
            step_loss += float(loss.detach())
            step_tokens += real_tokens(sequences)
            rewards.append(reward.detach())
        optimizer_step(optimizer, scheduler, scaler, trainable, config.max_grad_norm)
        state.step += 1
        elapsed = time.perf_counter() - started
        seconds += elapsed
        session_tokens += step_tokens
        state.tokens += step_tokens
        reward_all = torch.cat(rewards)
        row = {"kind": "train", "step": state.step, "epoch": state.epoch, "loss": round(step_loss, 6),
               "lr": scheduler.get_last_lr()[0], "tokens": state.tokens,
               "tokens_per_s": round(step_tokens / elapsed, 2) if elapsed else None,
               "reward_accuracy": round(float((reward_all > 0).float().mean()), 4),
               "reward_margin": round(float(reward_all.mean()), 6)}
        state.metrics.append(row)
        if progress:
            progress(row)
        if state.step % config.checkpoint_interval == 0 or state.step == config.max_steps:
            checkpoint.save(ctx.resume_dir, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                            progress=state, best_weights=None)
            if progress:
                progress({"kind": "checkpoint", "step": state.step})
    after = preference_report(_all_logps(loss_module, [pairs[i] for i in held_ids], config.batch_size, **scoring),
                              reference[held_ids], held_tokens, config.dpo_beta)
    state.metrics.append({"kind": "eval", "step": state.step, "val_loss": after["loss"]})
    summary = {
        "method": "dpo",
        "base_model": inputs["base_model"].name,
        "base_model_path": str(inputs["base_model"].resolve()),
        "started_from": str(start) if start is not None else "base",
        "reference": "the starting policy, log-probabilities computed once before training",
        "architecture": loaded.architecture,
        "target_modules": adapter_model.adapter_targets(model),
        "beta": config.dpo_beta,
        "pairs": len(pairs),
        "train_pairs": len(train_ids),
        "held_out_pairs": len(held_ids),
        "preference_accuracy_before": before["accuracy"],
        "preference_accuracy_after": after["accuracy"],
        "preference_measure": "mean log-probability per answer token, chosen against rejected",
        "mean_logp_margin_before": before["logp_margin"],
        "mean_logp_margin_after": after["logp_margin"],
        "reward_accuracy_after": after["reward_accuracy"],
        "mean_reward_margin": after["reward_margin"],
        "held_out_dpo_loss_before": before["loss"],
        "held_out_dpo_loss_after": after["loss"],
        "steps": state.step,
        "tokens": state.tokens,
        "tokens_per_second": round(session_tokens / seconds, 2) if seconds else 0.0,
        "final_train_loss": next((r["loss"] for r in reversed(state.metrics) if r["kind"] == "train"), None),
        "resumed_from_step": resumed_from,
        "device": device.type,
        "precision": str(autocast).removeprefix("torch.") if autocast else "fp32",
        "qlora": config.qlora,
        "peak_memory_bytes": peak_memory_bytes(device),
    }
    if not all(math.isfinite(float(v)) for v in (after["loss"], after["reward_margin"])):
        raise InputError("DPO diverged (non-finite loss); lower train.learning_rate or raise train.dpo_beta")
    adapter_model.save_outputs(ctx.output_dir, model, tokenizer, state.metrics, summary)
    return summary


def _reference(resume_dir: Path, loss_module: CausalLMLoss, pairs: list[Pair], batch: int,
               scoring: dict[str, Any]) -> torch.Tensor:
    """The starting policy's log-probs of every pair, computed once and kept for a resumed run."""
    path = resume_dir / REFERENCE_FILE
    if path.is_file():
        return torch.load(path, map_location="cpu", weights_only=True)
    values = _all_logps(loss_module, pairs, batch, **scoring)
    resume_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    torch.save(values, temporary)
    temporary.replace(path)
    return values
