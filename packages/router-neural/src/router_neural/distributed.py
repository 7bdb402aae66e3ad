"""Data-parallel training under `torchrun`: the process group, the device of each rank, sharding and reductions.

`torchrun --nproc_per_node=N -m router_cli train --spec-file ...` starts N processes with RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT set. The first collective call here starts the process group once (NCCL when
CUDA is available, each rank on cuda:LOCAL_RANK; gloo on CPU). A single-process run never starts one, and every
helper here is then the identity (or a no-op), so single-process training is exactly what it was.

The training loop (`router_neural.training.train_pairs`) keeps the spec's `batch_size` as the *global* batch: every
rank draws the same seeded epoch order, and each global batch is split into `world_size` contiguous shards
(`local_batch`), one per rank. DDP averages gradients over ranks, and each rank's loss is scaled so that the average
is the gradient of the mean over the whole global batch; up to the order of float additions, a step equals the
single-process step.

ROUTER_DISTRIBUTED_TIMEOUT (seconds, default 7200) bounds how long ranks wait for each other: rank 0 alone embeds the
prompts, trains dn_embedding's LLM-embedding stage and saves, while the others wait at a barrier.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from router_core import distributed as env
from router_core.errors import UserError

is_distributed = env.is_distributed
is_main_process = env.is_main_process
rank = env.rank
world_size = env.world_size
DEFAULT_TIMEOUT_S = 7200
ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Batch = TypeVar("Batch", torch.Tensor, np.ndarray)


def device() -> torch.device:
    """The device this process trains on: cuda:LOCAL_RANK when distributed on GPUs, else CUDA or CPU as before."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    if not env.is_distributed():
        return torch.device("cuda")
    local, visible = env.local_rank(), torch.cuda.device_count()
    if local >= visible:
        raise UserError(f"LOCAL_RANK={local} but only {visible} GPUs are visible: start at most {visible} processes "
                        "per machine (torchrun --nproc_per_node)")  # fmt: skip
    return torch.device("cuda", local)


def setup() -> bool:
    """Start the process group if this is one of several processes and it is not started yet; whether one runs."""
    if not env.is_distributed():
        return False
    if dist.is_initialized():
        return True
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
    if missing:
        raise UserError(f"WORLD_SIZE={env.world_size()} but {' and '.join(missing)} not set: start multi-process "
                        "training with torchrun (see docs/scaling.md)")  # fmt: skip
    here = device()
    if here.type == "cuda":
        torch.cuda.set_device(here)
    timeout = timedelta(seconds=float(os.environ.get("ROUTER_DISTRIBUTED_TIMEOUT", DEFAULT_TIMEOUT_S)))
    dist.init_process_group("nccl" if here.type == "cuda" else "gloo", timeout=timeout)
    env.use_barrier(barrier)
    atexit.register(_teardown)
    return True


def _teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if setup():
        here = device()
        dist.barrier(device_ids=[here.index] if here.type == "cuda" else None)


@contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block first (say, filling a cache); the other ranks run it after rank 0 is done."""
    if not setup():
        yield
        return
    if not env.is_main_process():
        barrier()
    yield
    if env.is_main_process():
        barrier()


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """`values` summed over ranks (the same tensor on every rank); itself in a single process."""
    if setup():
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def broadcast_from_main(values: torch.Tensor) -> torch.Tensor:
    """Rank 0's `values` on every rank (each rank passes a tensor of the same shape and dtype)."""
    if not setup():
        return values
    moved = values.to(device())
    dist.broadcast(moved, src=0)
    return moved.to(values.device)


def shard(n: int, rank_: int, world: int) -> slice:
    """The contiguous part of range(n) rank `rank_` of `world` takes; parts differ in size by at most one, the
    first ranks taking the larger ones, and in rank order they tile range(n) exactly."""
    size, extra = divmod(n, world)
    start = rank_ * size + min(rank_, extra)
    return slice(start, start + size + (1 if rank_ < extra else 0))


def local_batch(batch: Batch, rank_: int | None = None, world: int | None = None) -> Batch:
    """This rank's shard of one global batch (all of it in a single process)."""
    world = env.world_size() if world is None else world
    return batch[shard(len(batch), env.rank() if rank_ is None else rank_, world)] if world > 1 else batch


def batch_mean(values: torch.Tensor, global_size: int) -> torch.Tensor:
    """The mean to back-propagate of this rank's `values` out of `global_size` values over all ranks.

    In one process `values.mean()`. Across ranks each rank's sum is scaled by world / global_size, so that the
    average DDP takes of the ranks' gradients is the gradient of the global mean, also when shards differ in size.
    """
    world = env.world_size()
    return values.mean() if world == 1 else values.sum() * (world / global_size)


class _ScoreModule(nn.Module):
    """Makes a scorer's score function the forward of one module, so DDP sees every forward and backward."""

    _score_fn: ScoreFn

    def __init__(self, module: nn.Module, score_fn: ScoreFn) -> None:
        super().__init__()
        self.module = module
        self.__dict__["_score_fn"] = score_fn  # not registered: it may be `module` itself (simple_scoring)

    def forward(self, rows: torch.Tensor, models: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self._score_fn(rows, models)


def data_parallel(module: nn.Module, score_fn: ScoreFn) -> ScoreFn:
    """`score_fn` (rows, models) -> scores, through DDP over `module`'s parameters when distributed, else itself.

    Constructing DDP copies rank 0's parameters and buffers to every rank (DDP's default also re-sends the buffers,
    which are small and constant here, at each forward). Every trainable parameter of `module` must take part in
    every forward (DDP's fast default, `find_unused_parameters=False`): freeze what a network does not use (a BERT
    pooler, say). A rank whose shard of a batch is empty still takes part: its loss is 0 and its gradients zeros.
    """
    if not setup():
        return score_fn
    here = next(module.parameters()).device
    return nn.parallel.DistributedDataParallel(_ScoreModule(module, score_fn),
                                               device_ids=[here.index] if here.type == "cuda" else None)  # fmt: skip
