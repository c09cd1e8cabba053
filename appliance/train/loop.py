"""The LoRA training loop: accumulation, schedule, validation, early stopping, exact resume.

A plain loop rather than transformers' Trainer: it packs without a collator round-trip,
checkpoints only the adapter (megabytes, not the base model), and its state is small
enough to save every few steps, which is what makes a killed CPU run cheap to resume.
"""

from __future__ import annotations

import contextlib
import math
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from appliance.train import checkpoint, distributed
from appliance.train.config import Precision, Sharding, TrainConfig
from appliance.train.data import IGNORE, BatchPlan, Sequence, evaluation_batches
from appliance.train.distributed import DistInfo
from appliance.train.loss import CausalLMLoss

if TYPE_CHECKING:
    from torch.distributed.fsdp import FSDPModule
    from torch.nn.parallel import DistributedDataParallel

ProgressFn = Callable[[dict[str, Any]], None]


@dataclass
class TrainOutcome:
    progress: checkpoint.Progress
    resumed_from_step: int
    stopped_early: bool
    restored_best: bool
    train_seconds: float
    tokens_this_session: int
    peak_memory_bytes: int
    # parameters (frozen and trainable) this process held: the whole model, or about 1/N of it sharded
    parameters_per_process: int = 0
    # the whole trainable weights after a sharded run (each process held slices); None = the model's own
    adapter_weights: dict[str, torch.Tensor] | None = None

    @property
    def tokens_per_second(self) -> float:
        return self.tokens_this_session / self.train_seconds if self.train_seconds > 0 else 0.0


def resolve_precision(precision: Precision, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32 (always on a CPU)."""
    if device.type != "cuda" or precision is Precision.fp32:
        return None
    if precision is Precision.bf16 or (precision is Precision.auto and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def peak_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> Any:
    from transformers import get_scheduler

    name = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}[config.schedule.value]
    return get_scheduler(name, optimizer, num_warmup_steps=config.warmup_steps, num_training_steps=config.max_steps)


def optimizer_step(
    optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any, trainable: list[torch.nn.Parameter], max_grad_norm: float
) -> None:
    """One update from the accumulated gradients: unscale (fp16), clip, step, advance the schedule, clear."""
    if scaler:
        scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(trainable, max_grad_norm)
    if scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def _grad_scaler(autocast: torch.dtype | None, *, sharded: bool) -> Any:
    """fp16 needs loss scaling; sharded, every process must agree on skipping a step although each sees a slice."""
    if autocast is not torch.float16:
        return None
    if sharded:
        from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

        return ShardedGradScaler("cuda")
    return torch.amp.GradScaler("cuda")


def _gradient_sync(wrapped: torch.nn.Module, *, last: bool, ddp: bool,
                   sharded: bool) -> contextlib.AbstractContextManager[Any]:
    """Average gradients over processes only on a step's last micro-batch; the others accumulate locally."""
    if sharded:
        cast("FSDPModule", wrapped).set_requires_gradient_sync(last)
    elif ddp and not last:
        return cast("DistributedDataParallel", wrapped).no_sync()
    return contextlib.nullcontext()


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: value.to(device) for key, value in batch.items()}


def labelled(batch: dict[str, torch.Tensor]) -> int:
    """Positions whose next token is learned: what a token-weighted mean loss divides by."""
    return int((batch["labels"][:, 1:] != IGNORE).sum())


def evaluate(loss_module: CausalLMLoss, batches: list[dict[str, torch.Tensor]], *, device: torch.device,
             autocast: torch.dtype | None, info: DistInfo) -> float | None:
    """Token-weighted mean validation loss over all processes."""
    loss_module.eval()
    total, count = 0.0, 0.0
    with torch.no_grad():
        for batch in batches:
            if labelled(batch) == 0:
                continue
            with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                losses, _ = loss_module(**_to(batch, device))
            total += float(losses.sum())
            count += float(losses.numel())
    loss_module.train()
    total, count = distributed.all_reduce_sum(info, [total, count])
    return total / count if count else None


def run_training(
    model: torch.nn.Module,
    train: list[Sequence],
    validation: list[Sequence],
    config: TrainConfig,
    *,
    pad_id: int,
    resume_dir: Path,
    device: torch.device,
    info: DistInfo,
    progress: ProgressFn | None = None,
) -> TrainOutcome:
    plan = BatchPlan(train, config, pad_id=pad_id, rank=info.rank, world=info.world)
    eval_batches = evaluation_batches(validation, config, pad_id=pad_id, rank=info.rank, world=info.world)
    autocast = resolve_precision(config.precision, device)
    loss_module = CausalLMLoss(model)
    sharded = info.enabled and config.sharding is Sharding.fsdp
    if sharded:
        # the loss module is the root unit: its forward calls the backbone and the head directly
        distributed.shard(loss_module, distributed.decoder_layers(model), compute_dtype=autocast)
    # after sharding: the optimizer must hold the sharded parameters, and its state is sliced like them
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = _scheduler(optimizer, config)
    scaler = _grad_scaler(autocast, sharded=sharded)

    state, best_weights = checkpoint.Progress(), None
    saved = checkpoint.load(resume_dir)
    if saved is not None:
        state, best_weights = checkpoint.apply(saved, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler)
    resumed_from = state.step
    wrapped: torch.nn.Module = loss_module
    if info.enabled and not sharded:
        from torch.nn.parallel import DistributedDataParallel

        wrapped = DistributedDataParallel(loss_module, device_ids=[device.index] if device.type == "cuda" else None)
    loss_module.train()
    session_tokens, train_seconds = 0, 0.0
    batches = plan.epoch(state.epoch)
    stop = False
    while state.step < config.max_steps and not stop:
        started = time.perf_counter()
        micro_batches, step_tokens = [], 0
        for _ in range(config.gradient_accumulation_steps):
            if state.batch_in_epoch >= len(batches):
                state.epoch, state.batch_in_epoch = state.epoch + 1, 0
                batches = plan.epoch(state.epoch)
            micro_batches.append(plan.batch(batches[state.batch_in_epoch]))
            step_tokens += plan.tokens(batches[state.batch_in_epoch])
            state.batch_in_epoch += 1
        # the step's loss is the mean over every labelled token of all its micro-batches on all
        # processes (DDP and FSDP average gradients over processes, hence the factor world)
        step_targets = distributed.all_reduce_sum(info, [float(sum(labelled(b) for b in micro_batches))])[0]
        scale = info.world / max(step_targets, 1.0)
        step_loss = 0.0
        for micro, batch in enumerate(micro_batches):
            last = micro == len(micro_batches) - 1
            with _gradient_sync(wrapped, last=last, ddp=info.enabled and not sharded, sharded=sharded):
                with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                    losses, _ = wrapped(**_to(batch, device))
                summed = losses.sum()
                loss = summed * scale
                (scaler.scale(loss) if scaler else loss).backward()
            step_loss += float(summed.detach())
        optimizer_step(optimizer, scheduler, scaler, trainable, config.max_grad_norm)
        state.step += 1
        loss_sum, tokens_all = distributed.all_reduce_sum(info, [step_loss, float(step_tokens)])
        elapsed = time.perf_counter() - started
        train_seconds += elapsed
        session_tokens += int(tokens_all)
        state.tokens += int(tokens_all)
        row: dict[str, Any] = {
            "kind": "train", "step": state.step, "epoch": state.epoch,
            "loss": round(loss_sum / max(step_targets, 1.0), 6), "lr": scheduler.get_last_lr()[0],
            "tokens": state.tokens, "tokens_per_s": round(tokens_all / elapsed, 2) if elapsed else None,
        }
        state.metrics.append(row)
        if progress and info.main:
            progress(row)
        due = config.eval_interval and state.step % config.eval_interval == 0
        # every rank evaluates (some may hold no validation batch): evaluate() all-reduces
        if validation and (due or state.step == config.max_steps):
            value = evaluate(loss_module, eval_batches, device=device, autocast=autocast, info=info)
            if value is not None and math.isfinite(value):
                if state.best_val_loss is None or value < state.best_val_loss - config.early_stopping_min_delta:
                    state.best_val_loss, state.evals_without_improvement = value, 0
                    best_weights = checkpoint.trainable_state(model)
                else:
                    state.evals_without_improvement += 1
                evaluation = {"kind": "eval", "step": state.step, "val_loss": round(value, 6)}
                state.metrics.append(evaluation)
                if progress and info.main:
                    progress(evaluation)
                patience = config.early_stopping_patience
                stop = distributed.broadcast_flag(info, bool(patience) and state.evals_without_improvement >= patience)
        if state.step % config.checkpoint_interval == 0 or stop or state.step == config.max_steps:
            checkpoint.save(resume_dir, model=model, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                            progress=state, best_weights=best_weights, write=info.main)
            distributed.barrier(info)
            if progress and info.main:
                progress({"kind": "checkpoint", "step": state.step})
    restored = False
    if stop and best_weights is not None:
        parameters = dict(model.named_parameters())
        with torch.no_grad():
            for name, best in best_weights.items():
                parameters[name].copy_(best)
        restored = True
    return TrainOutcome(
        progress=state, resumed_from_step=resumed_from, stopped_early=stop, restored_best=restored,
        train_seconds=train_seconds, tokens_this_session=session_tokens, peak_memory_bytes=peak_memory_bytes(device),
        parameters_per_process=distributed.held_parameters(model),
        adapter_weights=checkpoint.whole_trainable_state(model) if sharded else None,
    )
