"""Micro-batching: merged requests get exactly what they would get alone, and they really are merged."""

import asyncio
import threading

import numpy as np
import pytest

from router_core.scoring import score_models
from router_runtime.batching import BatchConfig, ScoreBatcher, ScoreJob, score_jobs
from tests.runtime.fakes import PlantedScorer

JOBS = [
    ScoreJob(["p1", "p2"], ["alpha", "beta"]),
    ScoreJob(["p2", "p3", "p2"], ["gamma", "unknown-x"], batch_size=7),  # repeated prompt, an unknown model
    ScoreJob(["p4"], ["unknown-x", "unknown-y"]),  # no known candidate at all
    ScoreJob(["p1"], ["beta", "alpha", "unknown-y"]),
]


def test_merged_scoring_equals_scoring_each_request_alone() -> None:
    scorer = PlantedScorer()
    merged = score_jobs(scorer, JOBS)
    assert len(scorer.calls) == 1
    prompts, models, batch_size = scorer.calls[0]
    assert prompts == ["p1", "p2", "p3", "p4"] and batch_size == 7  # each distinct prompt once; smallest batch
    assert models == ["alpha", "beta", "gamma", "unknown-x", "unknown-y"]
    for job, scores in zip(JOBS, merged, strict=True):
        np.testing.assert_array_equal(scores, score_models(scorer, job.prompts, job.models, job.batch_size))


def test_unknown_models_are_filled_from_the_request_s_own_candidates() -> None:
    (scores,) = score_jobs(PlantedScorer(), [JOBS[1]])
    np.testing.assert_array_equal(scores[:, 1], scores[:, 0])  # the mean of the one known candidate, gamma
    (none_known,) = score_jobs(PlantedScorer(), [JOBS[2]])
    np.testing.assert_array_equal(none_known, np.zeros((1, 2)))


async def _pile_up(config: BatchConfig, jobs: list[ScoreJob], scorer: PlantedScorer) -> list[np.ndarray]:
    """Start the first job, hold the scorer busy until the others are queued, then let everything run."""
    scorer.gate = threading.Event()
    async with ScoreBatcher(scorer, config) as batcher:
        first = asyncio.create_task(batcher.score(jobs[0]))
        await asyncio.to_thread(scorer.entered.wait, 30)
        rest = [asyncio.create_task(batcher.score(job)) for job in jobs[1:]]
        await asyncio.sleep(0)  # let them reach the queue
        scorer.gate.set()
        return await asyncio.gather(first, *rest)


@pytest.mark.parametrize("window_ms", [0.0, 2.0])
def test_requests_waiting_for_a_busy_scorer_are_merged(window_ms: float) -> None:
    scorer = PlantedScorer()
    results = asyncio.run(_pile_up(BatchConfig(window_ms=window_ms), JOBS, scorer))
    assert len(scorer.calls) == 2  # the first request alone, then the three that waited, together
    for job, scores in zip(JOBS, results, strict=True):
        np.testing.assert_array_equal(scores, score_models(PlantedScorer(), job.prompts, job.models))


def test_without_batching_every_request_is_scored_alone() -> None:
    scorer = PlantedScorer()
    asyncio.run(_pile_up(BatchConfig(enabled=False), JOBS, scorer))
    assert len(scorer.calls) == len(JOBS)


def test_a_batch_never_takes_more_than_max_prompts() -> None:
    scorer = PlantedScorer()
    jobs = [ScoreJob([f"q{i}a", f"q{i}b"], ["alpha"]) for i in range(6)]
    asyncio.run(_pile_up(BatchConfig(max_prompts=4), jobs, scorer))
    assert [len(prompts) for prompts, _, _ in scorer.calls] == [2, 4, 4, 2]


def test_the_window_waits_for_a_request_that_comes_soon_after() -> None:
    async def two_requests(config: BatchConfig, scorer: PlantedScorer) -> None:
        async with ScoreBatcher(scorer, config) as batcher:
            first = asyncio.create_task(batcher.score(JOBS[0]))
            await asyncio.sleep(0.01)
            await asyncio.gather(first, batcher.score(JOBS[3]))

    waiting, eager = PlantedScorer(), PlantedScorer()
    # the batch closes as soon as it holds max_prompts, so the long window costs nothing here
    asyncio.run(two_requests(BatchConfig(window_ms=30_000, max_prompts=3), waiting))
    asyncio.run(two_requests(BatchConfig(window_ms=0), eager))
    assert len(waiting.calls) == 1 and len(eager.calls) == 2


def test_a_failing_request_does_not_fail_the_requests_merged_with_it() -> None:
    scorer = PlantedScorer(fail_on="boom")
    jobs = [ScoreJob(["ok-1"], ["alpha"]), ScoreJob(["boom"], ["alpha"]), ScoreJob(["ok-2"], ["beta"])]

    async def run() -> list[object]:
        scorer.gate = threading.Event()
        async with ScoreBatcher(scorer, BatchConfig()) as batcher:
            tasks = [asyncio.create_task(batcher.score(job)) for job in jobs]
            await asyncio.sleep(0.05)
            scorer.gate.set()
            return await asyncio.gather(*tasks, return_exceptions=True)

    ok_1, boom, ok_2 = asyncio.run(run())
    assert isinstance(boom, RuntimeError)
    assert isinstance(ok_1, np.ndarray) and isinstance(ok_2, np.ndarray)
    np.testing.assert_array_equal(ok_2, score_models(PlantedScorer(), ["ok-2"], ["beta"]))


def test_scoring_outside_the_context_manager_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        asyncio.run(ScoreBatcher(PlantedScorer(), BatchConfig()).score(JOBS[0]))


@pytest.mark.parametrize("bad", [{"window_ms": -1.0}, {"max_prompts": 0}])
def test_batch_config_refuses_nonsense(bad: dict) -> None:
    with pytest.raises(ValueError, match="batch window"):
        BatchConfig(**bad)
