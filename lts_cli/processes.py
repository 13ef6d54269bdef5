"""The processes of one training under `torchrun` (torch.distributed): joining them, making them agree
on what each would otherwise decide alone, and leaving the group cleanly.

Every process of a `torchrun --nproc_per_node N lts train ...` runs the same command, and some of
what it decides comes from measuring its own machine: the micro-batch split from the free memory,
the step count of `--max-time` from timing a few steps. Two processes that decided differently
would run different numbers of steps and wait for each other forever, so process 0 decides and the
others take its decision (`agree`).

The group is joined here (the Trainer, through accelerate, takes a group that is already there) and
left at the end of a training that finished: a process that exits still in the group can be
aborted while the interpreter shuts down (SIGABRT, "terminate called without an active exception":
Gloo's worker threads still hold tensors then; pytorch/pytorch#190489).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


def rank() -> tuple[int, int]:
    """This process's rank and the number of processes (torchrun's environment; 0, 1 when run alone)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


@contextmanager
def group() -> Iterator[None]:
    """The processes of this training, joined for the block when there are several and no group is
    there yet; a group joined here is left when the block ends without an error (after an error the
    others may still be in a collective, and leaving could wait for them forever)."""
    import torch
    import torch.distributed as dist

    if rank()[1] == 1 or not dist.is_available() or dist.is_initialized():
        yield
        return
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    yield
    dist.destroy_process_group()


def agree(value: T) -> T:
    """Process 0's `value`, in every process (the value itself when there is one process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def wait_for_all() -> None:
    """Every process gets here before any goes on (nothing when there is one process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()
