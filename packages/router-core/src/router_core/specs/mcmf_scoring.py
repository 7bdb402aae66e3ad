"""Spec of `mcmf_scoring`: node potentials of a min-cost circulation (OR-Tools), prompt-agnostic, closed-form."""

from typing import Literal

from pydantic import Field

from router_core.specs._base import ClosedFormSpecBase, min_occurrences_field


class McmfScoringSpec(ClosedFormSpecBase):
    """Scores are the optimal dual potentials of a min-cost flow whose arcs carry pairwise targets as costs.

    They solve min sum_pairs w_ij |s_i - s_j - t_ij| (weighted L1 fit of score gaps to pairwise targets);
    see docs/models/mcmf_scoring.md for the formulation.
    """

    model_type: Literal["mcmf_scoring"] = "mcmf_scoring"
    min_model_occurrences: int = min_occurrences_field(1000)
    """Battles whose models appear fewer times than this (either side, any outcome) are dropped before training
    (`min_model_comparisons` is accepted as another name for it)."""
    target: Literal["log_odds", "win_rate_difference"] = "log_odds"
    """Target gap t_ij of a compared pair: smoothed log-odds log((w_ij + a) / (w_ji + a)), or the win-rate
    difference (w_ij - w_ji) / (w_ij + w_ji) used by least squares."""
    smoothing: float = Field(default=0.5, gt=0)
    """Pseudo-count a added to both win counts of a pair for the `log_odds` target."""
    pair_weighting: Literal["count", "unit"] = "count"
    """Capacity w_ij of a pair's arcs: the number of decisive battles between the two, or 1 per compared pair."""
    cost_scale: int = Field(default=10_000, ge=1)
    """Targets are multiplied by this and rounded, since OR-Tools needs integer arc costs."""
