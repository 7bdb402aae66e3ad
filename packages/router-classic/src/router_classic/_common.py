"""Helpers shared by the prompt-agnostic scorers: one score per model, broadcast over prompts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from router_core.data.types import Battles


def broadcast_scores(
    index: dict[str, int], values: np.ndarray, n_prompts: int, models: Sequence[str]
) -> np.ndarray:
    """(n_prompts, n_models) table of per-model scores, NaN for models not in `index`."""
    row = np.array([values[index[m]] if m in index else np.nan for m in models], dtype=np.float64)
    return np.broadcast_to(row, (n_prompts, len(models))).copy()


def codes_in(index: dict[str, int], battles: Battles) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model codes of `battles` in a fitted scorer's index, and a mask of battles whose models are both known."""
    lookup = np.array([index.get(m, -1) for m in battles.models], dtype=np.int64)
    a, b = lookup[battles.model_a], lookup[battles.model_b]
    return a, b, (a >= 0) & (b >= 0)
