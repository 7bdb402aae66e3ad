"""`balance_model_samples`, defined once: per-battle weights under which every model's battles weigh about the same.

A battle between A and B weighs 1/count(A) + 1/count(B), where count is a model's appearances (either side) among
the battles counted; the weights are scaled to mean 1 over those battles. Closed-form scorers use them as sample
weights, iterative ones draw each epoch's battles with replacement in proportion to them.
"""

from __future__ import annotations

import numpy as np


def balanced_weights(
    model_a: np.ndarray, model_b: np.ndarray, n_models: int, counted: np.ndarray | None = None
) -> np.ndarray:
    """Weights of the battles, shape (n,), mean 1 over the `counted` ones (all by default).

    Args:
        model_a: shape (n,), model codes of side A.
        model_b: shape (n,), model codes of side B.
        n_models: number of model codes.
        counted: shape (n,) bool, the battles the counts and the mean are taken over (others get a weight too,
            from the same counts, so a caller can ignore them).
    """
    mask = np.ones(len(model_a), dtype=bool) if counted is None else np.asarray(counted, dtype=bool)
    if not mask.any():
        return np.ones(len(model_a))
    counts = np.bincount(model_a[mask], minlength=n_models) + np.bincount(model_b[mask], minlength=n_models)
    counts = np.maximum(counts, 1)  # a model seen only in uncounted battles
    weights = 1.0 / counts[model_a] + 1.0 / counts[model_b]
    return weights / weights[mask].mean()


def sampling_probabilities(model_a: np.ndarray, model_b: np.ndarray, n_models: int) -> np.ndarray:
    """`balanced_weights` normalised to sum to 1: the per-battle probabilities of a balanced epoch draw."""
    weights = balanced_weights(model_a, model_b, n_models)
    return weights / weights.sum()
