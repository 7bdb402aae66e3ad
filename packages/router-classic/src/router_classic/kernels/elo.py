"""Online Elo updates over a sequence of battles."""

import numpy as np
from numba import njit


@njit(cache=True)
def elo_pass(
    ratings: np.ndarray,
    model_a: np.ndarray,
    model_b: np.ndarray,
    winner: np.ndarray,
    order: np.ndarray,
    k_factor: float,
    initial_rating: float,
    epsilon: float,
    tie_push: float,
) -> tuple[np.ndarray, int, int]:
    """One sequential Elo pass; returns (new ratings, online correct, online decisive).

    Expected score of A is 1 / (1 + 10**((R_b - R_a) / 400)); each side moves by k_factor * (actual - expected).
    A win scores 1/0. A tie scores 0.5 each, plus tie_push / 2 for a side rated below initial + epsilon
    ("both were good"); both_bad scores 0.5 each, minus tie_push / 2 for a side rated above initial - epsilon.
    Online accuracy is taken before each update, over decisive battles only (equal ratings count as wrong).

    Args:
        ratings: shape (n_models,), float64 starting ratings (not modified).
        model_a: shape (n_battles,), int index of model A.
        model_b: shape (n_battles,), int index of model B.
        winner: shape (n_battles,), 0 = A won, 1 = B won, 2 = tie, 3 = both_bad.
        order: shape (n_steps,), battle indices in processing order (may repeat).
        k_factor: update step K.
        initial_rating: the rating every model starts from.
        epsilon: margin around initial_rating for the tie / both_bad push.
        tie_push: size of that push as a fraction of a full win.
    """
    r = ratings.copy()
    correct = 0
    decisive = 0
    for step in range(order.shape[0]):
        i = order[step]
        a = model_a[i]
        b = model_b[i]
        w = winner[i]
        expected_a = 1.0 / (1.0 + 10.0 ** ((r[b] - r[a]) / 400.0))
        if w == 0:
            actual_a, actual_b = 1.0, 0.0
        elif w == 1:
            actual_a, actual_b = 0.0, 1.0
        elif w == 2:
            actual_a = 0.5 + (0.5 * tie_push if r[a] < initial_rating + epsilon else 0.0)
            actual_b = 0.5 + (0.5 * tie_push if r[b] < initial_rating + epsilon else 0.0)
        else:
            actual_a = 0.5 - (0.5 * tie_push if r[a] > initial_rating - epsilon else 0.0)
            actual_b = 0.5 - (0.5 * tie_push if r[b] > initial_rating - epsilon else 0.0)
        if w <= 1:
            decisive += 1
            if (w == 0 and r[a] > r[b]) or (w == 1 and r[b] > r[a]):
                correct += 1
        r[a] += k_factor * (actual_a - expected_a)
        r[b] += k_factor * (actual_b - (1.0 - expected_a))
    return r, correct, decisive
