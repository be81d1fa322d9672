"""Distributed data parallel helpers: torchrun sets the environment, gloo on CPU, NCCL on GPU."""

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
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed(use_cuda: bool) -> DistInfo:
    """Join the torchrun process group if one is described by the environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if use_cuda else "gloo"
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
    return DistInfo(rank, world, local)


def all_reduce_(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over the initialised process group in place (gloo cannot reduce every dtype
    on every device: a GPU tensor goes via the CPU)."""
    if t.device.type == "cpu" or dist.get_backend() == "nccl":
        dist.all_reduce(t)
    else:
        c = t.cpu()
        dist.all_reduce(c)
        t.copy_(c)
    return t


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``t`` over ranks in place (nothing to do in a single process)."""
    if info.enabled:
        all_reduce_(t)
    return t


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_object(obj, info: DistInfo):
    """Rank 0's ``obj`` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
