"""Spec of `least_squares_scoring`: closed-form least squares on pairwise win-rate differences (prompt-agnostic)."""

from typing import Literal

from router_core.specs._base import ClosedFormSpecBase, min_occurrences_field


class LeastSquaresScoringSpec(ClosedFormSpecBase):
    """Scores s solving min sum_pairs w_ij (s_i - s_j - t_ij)^2, t_ij = win rate of i over j minus that of j over i."""

    model_type: Literal["least_squares_scoring"] = "least_squares_scoring"
    min_model_occurrences: int = min_occurrences_field(1000)
    """Battles whose models appear fewer times than this (either side, any outcome) are dropped before training
    (`min_model_comparisons` is accepted as another name for it)."""
    pair_weighting: Literal["unit", "count"] = "unit"
    """Weight w_ij of a compared pair: `unit` (every compared pair counts once, as the reference system did) or
    `count` (the number of decisive battles between the two)."""
