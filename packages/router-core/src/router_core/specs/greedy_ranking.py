"""Spec of `greedy_ranking`: models ordered by net wins (wins - losses), prompt-agnostic, closed-form."""

from typing import ClassVar, Literal

from pydantic import Field

from router_core.specs._base import ModelSpecBase


class GreedyRankingSpec(ModelSpecBase):
    """Rank models by decisive wins minus losses; the score is a function of the rank."""

    iterative: ClassVar[bool] = False

    model_type: Literal["greedy_ranking"] = "greedy_ranking"
    min_model_occurrences: int = Field(default=1000, ge=1)
    """Battles whose models appear fewer times than this (either side, any outcome) are dropped before training."""
    score_normalization: Literal["negative_rank", "normalized", "centered"] = "negative_rank"
    """Score from rank r (0 = best) of n models: `negative_rank` -r, `normalized` (n - r - 1) / n,
    `centered` -(r - (n - 1) / 2). Models tied on net wins and win rate share their mean rank."""
    print_summary: bool = True
    """Log the fit summary (net wins, comparisons that contradict the order) after fitting."""
