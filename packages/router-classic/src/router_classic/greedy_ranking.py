"""`greedy_ranking`: models ordered by net decisive wins; the score is a function of the rank."""

from __future__ import annotations

import numpy as np

from router_classic._per_model import PerModelScorer, decisive_wins, training_accuracy
from router_classic.kernels.greedy import net_win_ranks, normalize_ranks
from router_core.data.types import Battles
from router_core.scorer import RunConfig
from router_core.specs import GreedyRankingSpec


class GreedyRankingScorer(PerModelScorer):
    """Rank by wins - losses (then win rate); `score_normalization` turns the rank into a score."""

    spec_type = GreedyRankingSpec
    spec: GreedyRankingSpec

    def _fit_scores(self, train: Battles, run: RunConfig) -> np.ndarray:
        wins = decisive_wins(train)
        net, rank = net_win_ranks(wins)
        scores = normalize_ranks(rank, self.spec.score_normalization)
        higher = scores[:, None] > scores[None, :]
        self.summary_ = {
            "decisive_battles": int(wins.sum()),
            "top_net_wins": int(net.max()),
            "disagreements": int((wins * higher.T).sum()),  # battles won by the lower-ranked model
            "max_theoretical_accuracy": float(np.maximum(wins, wins.T).sum() / 2 / wins.sum()),
            "train_accuracy": training_accuracy(wins, scores),
        }
        return scores
