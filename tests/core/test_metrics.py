"""Pairwise accuracy: ties excluded, equal scores wrong, unknown models excluded."""

import numpy as np

from router_core.metrics import pairwise_accuracy


def test_known_answer():
    a = np.array([1.0, 0.0, 2.0, 5.0, 1.0, 3.0])
    b = np.array([0.0, 1.0, 2.0, 1.0, 9.0, 3.0])
    winner = np.array([0, 0, 0, 1, 1, 2])  # right, wrong, equal=wrong, wrong, right, tie (excluded)
    assert pairwise_accuracy(a, b, winner) == (0.4, 5)


def test_both_bad_and_nan_excluded_and_empty_is_nan():
    acc, n = pairwise_accuracy(np.array([1.0, np.nan]), np.array([0.0, 1.0]), np.array([0, 1]))
    assert (acc, n) == (1.0, 1)
    acc, n = pairwise_accuracy(np.array([1.0]), np.array([0.0]), np.array([3]))
    assert np.isnan(acc) and n == 0
