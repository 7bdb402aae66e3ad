"""Scoring helpers written once for every scorer: unknown-model fallback and per-battle scores."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from router_core.data.types import Battles
from router_core.scorer import Scorer

log = logging.getLogger(__name__)


def score_models(scorer: Scorer, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
    """Scores (n_prompts, n_models) with unknown models filled in (see `fill_unknown_models`)."""
    return fill_unknown_models(np.asarray(scorer.score(prompts, models, batch_size), dtype=np.float64), models)


def fill_unknown_models(scores: np.ndarray, models: Sequence[str]) -> np.ndarray:
    """`scores` (n_prompts, n_models) with every all-NaN column (a model never seen in training) filled in place.

    An unknown model gets, for each prompt, the mean score of the known candidates (or 0.0 when no candidate is
    known): it is neither preferred nor avoided. A warning names the unknown models. Returns `scores`.
    """
    unknown = np.asarray(np.isnan(scores).all(axis=0), dtype=bool) if scores.size else np.zeros(len(models), dtype=bool)
    if unknown.any():
        names = ", ".join(m for m, u in zip(models, unknown, strict=True) if u)
        log.warning("models never seen in training get the mean score of the known candidates: %s", names)
        known = scores[:, ~unknown]
        fill = known.mean(axis=1) if known.shape[1] else np.zeros(scores.shape[0])
        scores[:, unknown] = fill[:, None]
    return scores


def battle_scores(scorer: Scorer, battles: Battles, batch_size: int = 128,
                  fill_unknown: bool = False) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Score of model A and model B in every battle, shape (n,) each; NaN where a model is unknown, or, with
    `fill_unknown`, the fallback `infer` applies (`fill_unknown_models`, the battles' models as the candidates).

    Each distinct prompt is scored once against every model of `battles`.
    """
    if len(battles) == 0:
        return np.zeros(0), np.zeros(0)
    prompts = [p or "" for p in battles.prompts]
    unique, row = np.unique(np.array(prompts, dtype=object), return_inverse=True)
    table = np.asarray(scorer.score(list(unique), list(battles.models), batch_size), dtype=np.float64)
    if fill_unknown:
        fill_unknown_models(table, battles.models)
    return table[row, battles.model_a], table[row, battles.model_b]
