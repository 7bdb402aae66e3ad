"""Pairwise metrics shared by training and evaluation."""

from __future__ import annotations

import numpy as np

from router_core.data.types import A_WINS, B_WINS


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
