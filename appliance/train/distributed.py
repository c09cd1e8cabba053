"""Data-parallel set-up from the environment that ``torchrun`` / ``accelerate launch`` provide.

The same ``appliance train`` command runs alone or as one of N processes; only the
environment differs. NCCL on GPUs, gloo on CPUs (which is how the tests run two processes).
With ``train.sharding = "fsdp"`` the processes split the model instead of replicating it
(torch's FSDP2, ``fully_shard``), which runs on gloo too, so the CPU tests cover that path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from deid.errors import ConfigError, ModelError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup() -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world=world, local_rank=local_rank)


def _device(info: DistInfo) -> torch.device:
    return torch.device("cuda", info.local_rank) if torch.cuda.is_available() else torch.device("cpu")


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_sum(info: DistInfo, values: list[float]) -> list[float]:
    if not info.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=_device(info))
    dist.all_reduce(tensor)
    return tensor.tolist()


def broadcast_flag(info: DistInfo, flag: bool) -> bool:
    """Rank 0's decision for all ranks (e.g. early stopping)."""
    if not info.enabled:
        return flag
    tensor = torch.tensor([1 if flag else 0], dtype=torch.int64, device=_device(info))
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The blocks of a transformers model that its own authors say must stay whole (``_no_split_modules``).

    Those are the decoder layers for every causal LM family, which makes them the units to
    shard: one is gathered while it runs and split again after, so a process never holds
    more than its share plus one layer.
    """
    unwrap = getattr(model, "get_base_model", None)  # a peft model wraps the transformers one
    base: Any = unwrap() if unwrap is not None else model
    names = set(getattr(base, "_no_split_modules", None) or [])
    layers = [module for module in base.modules() if type(module).__name__ in names]
    if not layers:
        raise ModelError(f"train.sharding = fsdp: {type(base).__name__} names no decoder layers to shard "
                         "(no _no_split_modules); use sharding = none")
    return layers


def shard(root: nn.Module, layers: list[nn.Module], *, compute_dtype: torch.dtype | None) -> None:
    """Split ``root``'s parameters across the processes in place, each of ``layers`` its own unit.

    What no layer holds (embeddings, final norm, output head) belongs to the root's unit. On a
    GPU the weights are gathered in the compute dtype (bf16/fp16) while the LoRA parameters
    keep their fp32 master copies; gradients are reduced in fp32, which costs nothing worth
    saving since only the LoRA gradients (megabytes) travel.
    """
    try:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    except ImportError:
        raise ConfigError(f"train.sharding = fsdp needs torch >= 2.6 (FSDP2); this is torch {torch.__version__}") from None
    policy = (MixedPrecisionPolicy(param_dtype=compute_dtype, reduce_dtype=torch.float32)
              if compute_dtype is not None else MixedPrecisionPolicy())
    for layer in layers:
        fully_shard(layer, mp_policy=policy)
    fully_shard(root, mp_policy=policy)


def held_parameters(model: nn.Module) -> int:
    """Parameters in this process's memory: its slice of each sharded one (a DTensor), all of the others."""
    return sum(p.to_local().numel() if hasattr(p, "to_local") else p.numel() for p in model.parameters())
