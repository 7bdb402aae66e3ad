"""Routing: from a score table to the chosen model per prompt. Pure numpy, written once for every scorer."""

from __future__ import annotations

import numpy as np


def route(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The best candidate for every prompt.

    Args:
        scores: shape (n_prompts, n_models), higher = more likely preferred, no NaN (fill unknown models first
            with `router_core.scoring.fill_unknown_models`).

    Returns:
        (index, score), each shape (n_prompts,): the column of the highest score and that score. Ties go to the
        earliest candidate, so the caller's order of models is the tie-break.
    """
    if scores.ndim != 2 or scores.shape[1] == 0:
        raise ValueError(f"route needs scores of shape (n_prompts, n_models >= 1), got {scores.shape}")
    if np.isnan(scores).any():
        raise ValueError("route got NaN scores; fill unknown models first (router_core.scoring.fill_unknown_models)")
    index = np.argmax(scores, axis=1)
    return index, scores[np.arange(scores.shape[0]), index]
