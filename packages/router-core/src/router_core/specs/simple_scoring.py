"""Spec of `simple_scoring`: one learnable score per model, trained by gradient descent (prompt-agnostic)."""

from typing import Literal

from pydantic import Field

from router_core.specs._base import min_occurrences_field
from router_core.specs._pairwise import PairwiseLossFields
from router_core.specs.optimizers import OptimizerSpec


class SimpleScoringSpec(PairwiseLossFields):
    """A zero-initialised scalar per model; decisive battles use the ranking loss, ties push both scores above
    +eps and both_bad both below -eps (weighted by non_ranking_loss_coeff)."""

    model_type: Literal["simple_scoring"] = "simple_scoring"
    optimizer: OptimizerSpec
    """Optimizer and learning-rate schedule."""
    non_ranking_loss_coeff: float = Field(default=0.01, ge=0)
    """Weight of the tie / both_bad terms (0 drops ties and both_bad)."""
    min_model_occurrences: int = min_occurrences_field(1000)
    """Battles whose models appear fewer times than this (either side, any outcome) are dropped before training
    (`min_model_comparisons` is accepted as another name for it)."""
