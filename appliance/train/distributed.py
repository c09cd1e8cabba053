"""Data-parallel set-up from the environment that ``torchrun`` / ``accelerate launch`` provide.

The same ``appliance train`` command runs alone or as one of N processes; only the
environment differs. NCCL on GPUs, gloo on CPUs (which is how the tests run two processes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


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
