"""Greedy ranking: order models by net wins (wins - losses), then win rate; exact ties share their mean rank."""

from __future__ import annotations

import numpy as np


def net_win_ranks(wins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Net wins and the fractional rank of every model (0 = best).

    Args:
        wins: shape (k, k), wins[i, j] = decisive wins of i over j.

    Returns:
        net: shape (k,), wins minus losses.
        rank: shape (k,), float rank by descending net wins, then descending win rate; models equal on both
            share the mean of the ranks they span.
    """
    won, lost = wins.sum(axis=1), wins.sum(axis=0)
    net = won - lost
    rate = np.divide(won, won + lost, out=np.full_like(won, 0.5), where=(won + lost) > 0)
    order = np.lexsort((-rate, -net))  # primary key last
    rank = np.empty(len(net))
    start = 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and net[order[stop]] == net[order[start]] and rate[order[stop]] == rate[order[start]]:
            stop += 1
        rank[order[start:stop]] = 0.5 * (start + stop - 1)
        start = stop
    return net, rank


def normalize_ranks(rank: np.ndarray, method: str) -> np.ndarray:
    """Score from rank (higher = better), shape (k,).

    Args:
        rank: shape (k,), 0 = best.
        method: `negative_rank` (-r), `normalized` ((n - r - 1) / n) or `centered` (-(r - (n - 1) / 2)).
    """
    n = len(rank)
    if method == "negative_rank":
        return -rank
    if method == "normalized":
        return (n - rank - 1) / n
    if method == "centered":
        return -(rank - (n - 1) / 2)
    raise ValueError(f"unknown score normalization {method!r}")
