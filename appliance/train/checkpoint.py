"""Resume checkpoints: everything needed to continue a run as if it had never stopped.

Only the trainable (LoRA) weights are saved, with the optimizer, the scheduler, every random
generator that training consumes, and the data position. A checkpoint is written into a
temporary directory and renamed into place, so a kill while saving leaves the previous one.
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
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


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
) -> None:
    payload = {
        "weights": trainable_state(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_state(),
        "progress": progress.__dict__,
        "best_weights": best_weights,
    }
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
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in payload["weights"].items():
            parameters[name].copy_(value)
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    if scaler is not None and payload.get("scaler"):
        scaler.load_state_dict(payload["scaler"])
    restore_rng(payload["rng"])
    return Progress(**payload["progress"]), payload.get("best_weights")
