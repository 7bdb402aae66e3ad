"""Which process of a multi-process run this is, read from the environment `torchrun` sets; torch-free.

`torchrun --nproc_per_node=N -m router_cli train ...` starts N copies of the CLI with RANK, WORLD_SIZE and
LOCAL_RANK set. Data parallelism itself (the process group, DDP, sharding) is router-neural's
(`router_neural.distributed`); the pipeline only needs to know whether it is the main process (rank 0, the one that
writes the model, logs and W&B) and to wait for it. A plain run (no WORLD_SIZE, or WORLD_SIZE=1) is rank 0 of 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from router_core.errors import UserError

_barrier: Callable[[], None] | None = None


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise UserError(f"environment variable {name}={value!r} is not an integer (torchrun sets it)") from None


def world_size() -> int:
    """Number of processes of this run (WORLD_SIZE, 1 when unset)."""
    return max(_env_int("WORLD_SIZE", 1), 1)


def rank() -> int:
    """This process's rank in 0 .. world_size() - 1 (RANK; 0 when not distributed)."""
    if world_size() == 1:
        return 0
    value = _env_int("RANK", 0)
    if not 0 <= value < world_size():
        raise UserError(f"RANK={value} is outside 0..{world_size() - 1} (WORLD_SIZE={world_size()})")
    return value


def local_rank() -> int:
    """This process's rank on its machine (LOCAL_RANK; 0 when not distributed): the GPU it uses."""
    return _env_int("LOCAL_RANK", 0) if world_size() > 1 else 0


def is_distributed() -> bool:
    """Whether this is one of several processes."""
    return world_size() > 1


def is_main_process() -> bool:
    """Whether this process writes (rank 0; always true in a single-process run)."""
    return rank() == 0


def use_barrier(barrier: Callable[[], None]) -> None:
    """Set what `barrier` calls: `router_neural.distributed` registers the process group's barrier when it starts
    one, so the torch-free pipeline can wait for rank 0 without importing torch."""
    global _barrier
    _barrier = barrier


def barrier() -> None:
    """Wait until every process got here; a no-op when no process group was started (a single process, or model
    types that train without torch: then every rank trains alike and only rank 0 saves)."""
    if _barrier is not None and is_distributed():
        _barrier()
