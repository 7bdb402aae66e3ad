"""Pairwise metrics shared by training and evaluation."""

from __future__ import annotations

import numpy as np

from router_core.data.types import A_WINS, B_WINS
from router_core.scorer import progress_bar


def pairwise_accuracy(score_a: np.ndarray, score_b: np.ndarray, winner: np.ndarray) -> tuple[float, int]:
    """Accuracy over decisive battles and how many there were.

    A battle counts as correct when sign(score_a - score_b) matches the winner; equal scores count as wrong.
    Ties and both_bad are excluded, and so are battles with a NaN score (a model the scorer never saw).
    Returns (nan, 0) when no battle is left.

    Args:
        score_a: shape (n,), score of model A in each battle.
        score_b: shape (n,), score of model B.
        winner: shape (n,), winner codes (0 = A, 1 = B, 2 = tie, 3 = both_bad).
    """
    decisive = (winner <= B_WINS) & ~np.isnan(score_a) & ~np.isnan(score_b)
    n = int(decisive.sum())
    if n == 0:
        return float("nan"), 0
    diff = (score_a - score_b)[decisive]
    correct = np.where(winner[decisive] == A_WINS, diff > 0, diff < 0)
    return float(correct.mean()), n


def log_loss(p: np.ndarray, y: np.ndarray, eps: float = 1e-15) -> float:
    """Mean negative log-likelihood of binary outcomes (natural log); nan when empty.

    Args:
        p: shape (n,), predicted probability that y = 1 (clipped to [eps, 1 - eps]).
        y: shape (n,), 0/1 outcomes.
    """
    if p.size == 0:
        return float("nan")
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(np.where(y == 1, np.log(p), np.log1p(-p))))


def brier_score(p: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error of predicted probabilities against 0/1 outcomes; nan when empty.

    Args:
        p: shape (n,), predicted probability that y = 1.
        y: shape (n,), 0/1 outcomes.
    """
    return float(np.mean((p - y) ** 2)) if p.size else float("nan")


def categorical_log_loss(probs: np.ndarray, labels: np.ndarray, eps: float = 1e-15) -> float:
    """Mean negative log-probability of the observed class; nan when empty.

    Args:
        probs: shape (n, c), class probabilities per row.
        labels: shape (n,), observed class index per row.
    """
    if labels.size == 0:
        return float("nan")
    chosen = probs[np.arange(labels.size), labels]
    return float(-np.mean(np.log(np.clip(chosen, eps, 1.0))))


def bootstrap_interval(
    values: np.ndarray, rounds: int = 1000, level: float = 0.95, seed: int = 0, progress: bool = False
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (resampled with replacement); (nan, nan) if empty.

    Args:
        values: shape (n,), per-item values (e.g. 1.0 for a correct prediction, 0.0 for a wrong one).
        rounds: bootstrap resamples.
        level: coverage of the interval.
        seed: seed of the resampling.
        progress: show a progress bar over the rounds (on a terminal).
    """
    n = values.size
    if n == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(rounds)
    chunk = max(1, 2_000_000 // n)  # bounds memory: chunk x n indices at a time
    with progress_bar(None, "bootstrap rounds", enabled=progress, total=rounds) as bar:
        for start in range(0, rounds, chunk):
            stop = min(rounds, start + chunk)
            means[start:stop] = values[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
            bar.update(stop - start)
    alpha = 1 - level
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)
