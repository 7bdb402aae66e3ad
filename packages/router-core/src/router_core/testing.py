"""Synthetic battles with planted strengths, for tests and benchmarks (numpy only).

`synthetic_battles(20_000, 10, seed=0)` draws pairs of models and outcomes from a Davidson Bradley-Terry model
with known log-strengths, so a scorer's recovered order can be checked against the truth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from router_core.data.types import WINNERS, Battle, Battles
from router_core.scorer import RunConfig, TrainHooks


@dataclass(frozen=True)
class Synthetic:
    """Generated battles and the truth they were drawn from."""

    battles: Battles
    strengths: dict[str, float]
    """Planted natural-log strength of every model (the Bradley-Terry theta)."""

    def planted(self, models: tuple[str, ...] | list[str]) -> np.ndarray:
        """Planted strengths in the order of `models`, shape (len(models),)."""
        return np.array([self.strengths[m] for m in models], dtype=np.float64)


def synthetic_battles(
    n_battles: int,
    n_models: int = 10,
    *,
    seed: int = 0,
    spread: float = 1.0,
    tie_strength: float = 0.0,
    both_bad_rate: float = 0.0,
    popularity: float = 0.0,
    n_prompts: int = 50,
) -> Synthetic:
    """Battles drawn from planted strengths.

    Strengths are evenly spaced over [-spread, spread] and assigned to models in a seeded random order. Each
    battle picks two distinct models (model i with weight exp(popularity * z_i), z standard normal, so
    popularity > 0 makes some models much more common), then an outcome from Davidson's model:
    P(A) : P(B) : P(tie) = exp(theta_a / 2) / exp(theta_b / 2) : exp(theta_b / 2) / exp(theta_a / 2) :
    tie_strength. Afterwards a fraction `both_bad_rate` of battles, chosen at random, become both_bad.
    Prompts cycle through `n_prompts` distinct texts; model names are `model-000`, `model-001`, ...

    Args:
        n_battles: number of battles.
        n_models: number of models (at least 2).
        seed: seed of every random choice.
        spread: planted strengths span [-spread, spread] (natural-log scale).
        tie_strength: Davidson's nu (0 = no ties).
        both_bad_rate: fraction of battles relabelled both_bad.
        popularity: log-normal spread of how often each model is picked (0 = uniform).
        n_prompts: number of distinct prompt texts.
    """
    if n_models < 2:
        raise ValueError("n_models must be at least 2")
    rng = np.random.default_rng(seed)
    names = [f"model-{i:03d}" for i in range(n_models)]
    theta = rng.permutation(np.linspace(-spread, spread, n_models))
    weight = np.exp(popularity * rng.standard_normal(n_models))
    a, b = _distinct_pairs(rng, weight / weight.sum(), n_battles)
    half = 0.5 * (theta[a] - theta[b])
    p_a, p_b, p_t = np.exp(half), np.exp(-half), np.full(n_battles, tie_strength)
    total = p_a + p_b + p_t
    draw = rng.random(n_battles) * total
    winner = np.where(draw < p_a, 0, np.where(draw < p_a + p_b, 1, 2)).astype(np.int8)
    winner[rng.random(n_battles) < both_bad_rate] = 3
    battles = _battles(names, a, b, winner, n_prompts)
    return Synthetic(battles, dict(zip(names, theta.tolist(), strict=True)))


def _distinct_pairs(rng: np.random.Generator, p: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    a = rng.choice(len(p), size=n, p=p)
    b = rng.choice(len(p), size=n, p=p)
    clash = np.flatnonzero(a == b)
    while clash.size:  # redraw B until it differs from A
        b[clash] = rng.choice(len(p), size=clash.size, p=p)
        clash = clash[a[clash] == b[clash]]
    return a.astype(np.int32), b.astype(np.int32)


def _battles(names: list[str], a: np.ndarray, b: np.ndarray, winner: np.ndarray, n_prompts: int) -> Battles:
    prompts = [f"synthetic prompt {i}" for i in range(max(n_prompts, 1))]
    labels = [WINNERS[w] for w in winner.tolist()]
    records = [
        Battle(model_a=names[x], model_b=names[y], winner=w, id=str(i), prompt=prompts[i % len(prompts)])
        for i, (x, y, w) in enumerate(zip(a.tolist(), b.tolist(), labels, strict=True))
    ]
    # Like Battles.from_records, `models` lists only models that appear, here in name order.
    present = np.flatnonzero(np.bincount(a, minlength=len(names)) + np.bincount(b, minlength=len(names)))
    code = np.full(len(names), -1, dtype=np.int32)
    code[present] = np.arange(present.size, dtype=np.int32)
    return Battles(tuple(names[i] for i in present), code[a], code[b], winner, records)


def relabelled(battles: Battles, rename: dict[str, str]) -> Battles:
    """The same battles with every model renamed by `rename` (for relabelling-invariance tests)."""
    return Battles.from_records(
        Battle(model_a=rename[r.model_a], model_b=rename[r.model_b], winner=r.winner) for r in battles.records
    )


def quiet_fit_args(log: Callable[[str], None] | None = None, **run: Any) -> tuple[RunConfig, TrainHooks]:
    """`(RunConfig(**run), TrainHooks)` with no progress bars and log lines dropped (or sent to `log`), for
    `scorer.fit(train, selection, *quiet_fit_args(epochs=3))` in tests and benchmarks."""
    return RunConfig(**run), TrainHooks(log=log or (lambda _: None), progress=False)
