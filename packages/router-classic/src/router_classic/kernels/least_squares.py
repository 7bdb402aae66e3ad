"""Least squares on pairwise win-rate differences: normal equations (a graph Laplacian) and their solution."""

from __future__ import annotations

import numpy as np


def normal_equations(wins: np.ndarray, count_weighted: bool) -> tuple[np.ndarray, np.ndarray]:
    """L and b of min_s sum_{i<j compared} w_ij (s_i - s_j - t_ij)^2, whose minimisers solve L s = b.

    t_ij = (wins_ij - wins_ji) / (wins_ij + wins_ji); w_ij = 1 per compared pair, or wins_ij + wins_ji.

    Args:
        wins: shape (k, k), wins[i, j] = decisive wins of i over j.
        count_weighted: weight a pair by its number of decisive battles instead of 1.

    Returns:
        laplacian: shape (k, k), L = D - W of the pair weights.
        rhs: shape (k,), b_i = sum_j w_ij t_ij.
    """
    total = wins + wins.T
    compared = total > 0
    target = np.divide(wins - wins.T, total, out=np.zeros_like(total), where=compared)
    weight = total if count_weighted else compared.astype(np.float64)
    laplacian = np.diag(weight.sum(axis=1)) - weight
    return laplacian, (weight * target).sum(axis=1)


def solve(laplacian: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Minimum-norm solution of L s = b, shape (k,).

    L is singular (one null direction per connected component), so the minimum-norm solution has mean zero
    within every component.

    Args:
        laplacian: shape (k, k).
        rhs: shape (k,).
    """
    return np.linalg.lstsq(laplacian, rhs, rcond=None)[0]


def residuals(wins: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """s_i - s_j - t_ij over the compared pairs i < j, shape (P,).

    Args:
        wins: shape (k, k), decisive win counts.
        scores: shape (k,), fitted scores.
    """
    total = wins + wins.T
    i, j = np.nonzero(np.triu(total > 0, 1))
    return scores[i] - scores[j] - (wins[i, j] - wins[j, i]) / total[i, j]
