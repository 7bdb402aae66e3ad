"""Micro-batching for the HTTP server: concurrent score requests share one pass through the encoder.

Requests that arrive within a short window (or while the scorer is busy) are merged: the union of their prompts
is scored once against the union of their models, and each request gets its own rows and columns back. Scoring
runs on one worker thread, so the event loop keeps accepting requests while the encoder works.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from router_core.scoring import fill_unknown_models

log = logging.getLogger(__name__)


class ScoringModel(Protocol):
    """What the server needs of a model: a fitted `router_core.scorer.Scorer` or an exported runtime scorer."""

    def score(self, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Scores (n_prompts, n_models), float64, NaN for models never seen in training."""
        ...

    @property
    def known_models(self) -> tuple[str, ...]:
        """Models seen in training."""
        ...


@dataclass(frozen=True)
class ScoreJob:
    """One request's prompts x models."""

    prompts: Sequence[str]
    models: Sequence[str]
    batch_size: int = 128


def score_jobs(model: ScoringModel, jobs: Sequence[ScoreJob]) -> list[np.ndarray]:
    """Score several requests with one `model.score` call; each result is (n_prompts, n_models), filled.

    The union of the prompts (each distinct text once) is scored against the union of the models, then sliced;
    unknown models are filled per request (`fill_unknown_models`), from that request's candidates only, so a
    merged request gets exactly what it would get alone. The smallest requested `batch_size` is used.
    """
    prompts = list(dict.fromkeys(p for job in jobs for p in job.prompts))
    models = list(dict.fromkeys(m for job in jobs for m in job.models))
    table = np.asarray(model.score(prompts, models, min(job.batch_size for job in jobs)), dtype=np.float64)
    row = {p: i for i, p in enumerate(prompts)}
    column = {m: j for j, m in enumerate(models)}
    results = []
    for job in jobs:
        part = table[np.ix_([row[p] for p in job.prompts], [column[m] for m in job.models])]  # a copy
        results.append(fill_unknown_models(part, job.models))
    return results


@dataclass(frozen=True)
class BatchConfig:
    """How requests are merged."""

    window_ms: float = 5.0
    """How long a batch waits for more requests after its first one (0: merge only requests already waiting)."""
    max_prompts: int = 512
    """Most prompts in one merged pass; a request that would overflow it starts the next batch."""
    enabled: bool = True
    """False: every request is scored alone, one after another (the benchmark's baseline)."""

    def __post_init__(self) -> None:
        if self.window_ms < 0 or self.max_prompts < 1:
            raise ValueError(f"batch window must be >= 0 ms and max_prompts >= 1, got {self}")


@dataclass
class _Pending:
    job: ScoreJob
    future: asyncio.Future[np.ndarray]


@dataclass
class BatchStats:
    """Counters since start: requests scored, scorer calls made, prompts those calls scored."""

    requests: int = 0
    batches: int = 0
    prompts: int = 0
    largest_batch: int = field(default=0)


class ScoreBatcher:
    """Merges concurrent `score` calls (see the module docstring). Use as `async with ScoreBatcher(...)`."""

    def __init__(self, model: ScoringModel, config: BatchConfig) -> None:
        self.model = model
        self.config = config
        self.stats = BatchStats()
        self._pending: deque[_Pending] = deque()
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="router-scorer")
        self._worker: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ScoreBatcher:
        self._worker = asyncio.create_task(self._run(), name="router-batcher")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        for pending in self._pending:
            pending.future.cancel()
        self._executor.shutdown(wait=True)

    async def score(self, job: ScoreJob) -> np.ndarray:
        """Scores (n_prompts, n_models) of one request, unknown models filled."""
        if self._worker is None or self._worker.done():
            raise RuntimeError("ScoreBatcher is not running (use it as an async context manager)")
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(job, future))
        self._arrived.set()
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [p for p in await self._collect() if not p.future.done()]  # done = the client went away
            if not batch:
                continue
            outcomes = await loop.run_in_executor(self._executor, self._score, [p.job for p in batch])
            for pending, outcome in zip(batch, outcomes, strict=True):
                if pending.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    pending.future.set_exception(outcome)
                else:
                    pending.future.set_result(outcome)

    async def _collect(self) -> list[_Pending]:
        while not self._pending:
            self._arrived.clear()
            await self._arrived.wait()
        batch = [self._pending.popleft()]
        if not self.config.enabled:
            return batch
        size = len(batch[0].job.prompts)
        deadline = asyncio.get_running_loop().time() + self.config.window_ms / 1000
        while True:
            while self._pending and size + len(self._pending[0].job.prompts) <= self.config.max_prompts:
                batch.append(self._pending.popleft())
                size += len(batch[-1].job.prompts)
            remaining = deadline - asyncio.get_running_loop().time()
            if self._pending or size >= self.config.max_prompts or remaining <= 0:  # full, or the window is over
                return batch
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)  # cancelling an Event wait loses nothing
            except TimeoutError:
                return batch

    def _score(self, jobs: list[ScoreJob]) -> list[np.ndarray | BaseException]:
        """On the worker thread: merged scoring; when that fails, each request alone, so one cannot fail others."""
        self.stats.requests += len(jobs)
        self.stats.batches += 1
        self.stats.prompts += sum(len(job.prompts) for job in jobs)
        self.stats.largest_batch = max(self.stats.largest_batch, len(jobs))
        try:
            return list(score_jobs(self.model, jobs))
        except Exception as error:  # noqa: BLE001 - reported to the request(s) that caused it
            if len(jobs) == 1:
                return [error]
            log.exception("a merged batch of %d requests failed; scoring them one by one", len(jobs))
        outcomes: list[np.ndarray | BaseException] = []
        for job in jobs:
            try:
                outcomes.append(score_jobs(self.model, [job])[0])
            except Exception as error:  # noqa: BLE001
                outcomes.append(error)
        return outcomes

    def describe(self) -> dict[str, Any]:
        """Configuration and counters, for `GET /health`."""
        return {"enabled": self.config.enabled, "window_ms": self.config.window_ms,
                "max_prompts": self.config.max_prompts, **vars(self.stats)}  # fmt: skip
