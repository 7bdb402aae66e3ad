"""Spec of `greedy_ranking`: models ordered by net wins (wins - losses), prompt-agnostic, closed-form."""

from typing import Literal

from router_core.specs._base import ClosedFormSpecBase, min_occurrences_field


class GreedyRankingSpec(ClosedFormSpecBase):
    """Rank models by decisive wins minus losses; the score is a function of the rank."""

    model_type: Literal["greedy_ranking"] = "greedy_ranking"
    min_model_occurrences: int = min_occurrences_field(1000)
    """Battles whose models appear fewer times than this (either side, any outcome) are dropped before training
    (`min_model_comparisons` is accepted as another name for it)."""
    score_normalization: Literal["negative_rank", "normalized", "centered"] = "negative_rank"
    """Score from rank r (0 = best) of n models: `negative_rank` -r, `normalized` (n - r - 1) / n,
    `centered` -(r - (n - 1) / 2). Models tied on net wins and win rate share their mean rank."""
