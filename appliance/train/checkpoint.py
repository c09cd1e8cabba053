"""Resume checkpoints: everything needed to continue a run as if it had never stopped.

Only the trainable (LoRA) weights are saved, with the optimizer, the scheduler, every random
generator that training consumes (each process's own under torchrun), and the data position.
A checkpoint is written into a temporary directory and renamed into place, so a kill while
saving leaves the previous one.

Under FSDP (``train.sharding = "fsdp"``) each process holds a slice of every weight and of its
optimizer state. A checkpoint still holds whole tensors: the slices of the trainable weights,
their optimizer state and the best weights are gathered on save and each process takes its
slice back on resume. That is one file in the same format whatever the sharding, so a run
can resume with DDP, FSDP or alone; and since only the LoRA part is saved, gathering it costs
megabytes. A checkpoint per rank (torch.distributed.checkpoint) would only pay once the
trainable state itself outgrew one process, which a LoRA adapter does not.
"""

from __future__ import annotations

import os
import random
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.pt"


@dataclass
class Progress:
    """Where the run is: the counters that, with the RNG states, make resuming exact."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    tokens: int = 0
    best_val_loss: float | None = None
    evals_without_improvement: int = 0
    metrics: list[dict[str, Any]] = field(default_factory=list)


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the trainable weights as the process holds them (its slices, when sharded)."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def is_sharded(model: torch.nn.Module) -> bool:
    return any(_split(p) for p in model.parameters())


def _split(value: Any) -> bool:
    # FSDP2 turns each parameter into a DTensor: a slice plus how to gather the whole
    return isinstance(value, torch.Tensor) and hasattr(value, "full_tensor")


def whole(value: torch.Tensor) -> torch.Tensor:
    """The whole tensor on the CPU; for a slice, gathered from every process (all must call this in step)."""
    return (value.full_tensor() if _split(value) else value).detach().cpu()  # type: ignore[attr-defined]


def whole_trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The whole trainable weights, e.g. for ``save_pretrained`` after a sharded run (collective)."""
    return {name: whole(p) for name, p in model.named_parameters() if p.requires_grad}


def _like(value: torch.Tensor, parameter: torch.Tensor) -> torch.Tensor:
    """``value`` (a whole tensor) as ``parameter`` holds it: this process's slice when it is sharded."""
    if not _split(parameter):
        return value
    from torch.distributed.tensor import distribute_tensor

    mesh, placements = parameter.device_mesh, parameter.placements  # type: ignore[attr-defined]
    # every process read the same file: each cuts its own slice, nothing is sent
    return distribute_tensor(value.to(mesh.device_type), mesh, placements, src_data_rank=None)


def _whole_optimizer_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    state = optimizer.state_dict()
    per_parameter = {index: {key: whole(value) if isinstance(value, torch.Tensor) else value
                             for key, value in slots.items()} for index, slots in state["state"].items()}
    return {**state, "state": per_parameter}


def _optimizer_state_like(payload: dict[str, Any], optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    indices = [i for group in payload["param_groups"] for i in group["params"]]
    owner = dict(zip(indices, parameters, strict=True))
    # moments have the parameter's shape and are sliced like it; the step counter is a scalar
    per_parameter = {
        index: {key: _like(value, owner[index]) if isinstance(value, torch.Tensor) and value.dim() > 0 else value
                for key, value in slots.items()}
        for index, slots in payload["state"].items()
    }
    return {**payload, "state": per_parameter}


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _rng_by_rank() -> list[dict[str, Any]]:
    """Every process's generators (collective under torchrun): ranks draw different dropout masks."""
    if not dist.is_available() or not dist.is_initialized() or dist.get_world_size() == 1:
        return [rng_state()]
    states: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(states, rng_state())
    return states


def _own_rng(payload: dict[str, Any]) -> dict[str, Any]:
    """This process's generators; rank 0's when the checkpoint came from another number of processes."""
    by_rank = payload.get("rng_by_rank") or []
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)
    return by_rank[rank] if len(by_rank) == world else payload["rng"]


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(
    resume_dir: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    progress: Progress,
    best_weights: dict[str, torch.Tensor] | None,
    write: bool = True,
) -> None:
    """Write the checkpoint where ``write``; under torchrun every process calls this (gathering is collective)."""
    generators = _rng_by_rank()
    sharded = is_sharded(model)
    if not write and not sharded:
        return
    payload = {
        "weights": whole_trainable_state(model) if sharded else trainable_state(model),
        "optimizer": _whole_optimizer_state(optimizer) if sharded else optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": generators[0],
        "rng_by_rank": generators,
        "progress": progress.__dict__,
        "best_weights": {name: whole(value) for name, value in best_weights.items()}
        if sharded and best_weights is not None else best_weights,
    }
    if not write:
        return
    temporary = resume_dir / f".{CHECKPOINT_DIR}-{uuid.uuid4().hex[:8]}"
    temporary.mkdir(parents=True)
    torch.save(payload, temporary / STATE_FILE)
    final = resume_dir / CHECKPOINT_DIR
    old = resume_dir / f".old-{uuid.uuid4().hex[:8]}"
    if final.exists():
        os.replace(final, old)
    os.replace(temporary, final)
    shutil.rmtree(old, ignore_errors=True)


def load(resume_dir: Path) -> dict[str, Any] | None:
    path = resume_dir / CHECKPOINT_DIR / STATE_FILE
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)


def apply(
    payload: dict[str, Any], *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any
) -> tuple[Progress, dict[str, torch.Tensor] | None]:
    """Continue from ``payload`` (whole tensors); a sharded model keeps this process's slices of them."""
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in payload["weights"].items():
            parameters[name].copy_(_like(value, parameters[name]))
    optimizer.load_state_dict(_optimizer_state_like(payload["optimizer"], optimizer))
    scheduler.load_state_dict(payload["scheduler"])
    if scaler is not None and payload.get("scaler"):
        scaler.load_state_dict(payload["scaler"])
    restore_rng(_own_rng(payload))
    best = payload.get("best_weights")
    if best is not None:
        best = {name: _like(value, parameters[name]) for name, value in best.items()}
    return Progress(**payload["progress"]), best
