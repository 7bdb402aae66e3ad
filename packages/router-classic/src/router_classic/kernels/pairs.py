"""Pairwise win counts and graph helpers shared by the closed-form scorers (vectorised numpy)."""

from __future__ import annotations

import numpy as np


def win_matrix(model_a: np.ndarray, model_b: np.ndarray, winner: np.ndarray, n_models: int) -> np.ndarray:
    """Decisive wins: out[i, j] = number of battles model i won against model j; ties and both_bad ignored.

    Args:
        model_a: shape (n,), int index of model A.
        model_b: shape (n,), int index of model B.
        winner: shape (n,), 0 = A won, 1 = B won, 2 = tie, 3 = both_bad.
        n_models: number of models k.

    Returns:
        shape (k, k), float64 counts.
    """
    decisive = winner <= 1
    won = np.where(winner == 0, model_a, model_b)[decisive].astype(np.int64)
    lost = np.where(winner == 0, model_b, model_a)[decisive].astype(np.int64)
    counts = np.bincount(won * n_models + lost, minlength=n_models * n_models)
    return counts.reshape(n_models, n_models).astype(np.float64)


def components(adjacency: np.ndarray) -> np.ndarray:
    """Connected-component label of every node of an undirected graph.

    Args:
        adjacency: shape (k, k), nonzero where two nodes are linked (either direction counts).

    Returns:
        shape (k,), labels 0..c-1 in order of each component's smallest node.
    """
    from scipy.sparse.csgraph import connected_components

    linked = (adjacency != 0) | (adjacency.T != 0)
    _, labels = connected_components(linked, directed=False)
    first = {}
    for label in labels.tolist():
        first.setdefault(label, len(first))
    return np.array([first[label] for label in labels.tolist()], dtype=np.int64)


def center_by_group(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """`values` minus the mean of their group, shape (k,).

    Args:
        values: shape (k,).
        groups: shape (k,), group label 0..c-1 of every entry.
    """
    sums = np.bincount(groups, weights=values)
    sizes = np.bincount(groups)
    return values - (sums / sizes)[groups]
