"""Spec of `elo_scoring`: online Elo ratings, one per model, prompt-agnostic."""

from typing import Literal

from pydantic import Field

from router_core.specs._base import ModelSpecBase, min_occurrences_field


class EloScoringSpec(ModelSpecBase):
    """Online Elo over the training battles, repeated for `epochs` passes over a reshuffled order."""

    model_type: Literal["elo_scoring"] = "elo_scoring"
    initial_rating: float = 1500.0
    """Rating every model starts from; the stored score is rating - initial_rating."""
    k_factor: float = Field(default=32.0, gt=0)
    """Step size K of the update dR = K * (actual - expected)."""
    balance_model_samples: bool = True
    """Resample each epoch's battles with replacement, weighted so rarely seen models count as much as common ones."""
    tie_both_bad_epsilon: float = Field(default=100.0, ge=0)
    """Margin around initial_rating: a tie lifts a side rated below initial+eps, both_bad lowers one above initial-eps."""
    non_ranking_loss_coeff: float = Field(default=0.1, ge=0)
    """Size of that tie / both_bad push, as a fraction of a full win (0 = plain Elo draws)."""
    min_model_occurrences: int = min_occurrences_field(1000)
    """Battles whose models appear fewer times than this (either side, any outcome) are dropped before training
    (`min_model_comparisons` is accepted as another name for it)."""
