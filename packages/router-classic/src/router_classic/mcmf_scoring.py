"""`mcmf_scoring`: scores are optimal node potentials of a min-cost circulation solved with OR-Tools."""

from __future__ import annotations

import numpy as np

from router_classic._per_model import PerModelScorer, decisive_wins, training_accuracy
from router_classic.kernels.mcmf import (
    circulation_arcs,
    min_cost_circulation,
    pair_targets,
    potentials,
    residual_arcs,
)
from router_classic.kernels.pairs import center_by_group, components
from router_core.data.types import Battles
from router_core.scorer import RunConfig
from router_core.specs import McmfScoringSpec


class McmfScorer(PerModelScorer):
    """Scores s minimising sum_pairs w_ij |s_i - s_j - t_ij|, read off the dual of a min-cost circulation.

    Each connected group of models (linked by decisive battles) is centred at 0.
    """

    spec_type = McmfScoringSpec
    spec: McmfScoringSpec

    def _fit_scores(self, train: Battles, run: RunConfig) -> np.ndarray:
        spec = self.spec
        wins = decisive_wins(train)
        k = len(train.models)
        pair_i, pair_j, target, weight = pair_targets(
            wins, spec.target == "log_odds", spec.smoothing, spec.pair_weighting == "count"
        )
        tails, heads, capacity, cost = circulation_arcs(pair_i, pair_j, target, weight, spec.cost_scale)
        flow, total_cost = min_cost_circulation(k, tails, heads, capacity, cost)
        residual = residual_arcs(tails, heads, capacity, cost, flow)
        scores = center_by_group(potentials(k, *residual) / spec.cost_scale, components(wins))
        misfit = weight * np.abs(scores[pair_i] - scores[pair_j] - target)
        self.summary_ = {
            "compared_pairs": int(pair_i.size),
            "decisive_battles": int(wins.sum()),
            "saturated_arcs": float(np.mean(flow == capacity)),
            "flow_cost": total_cost / spec.cost_scale,  # = minus the summed weighted L1 misfit (LP duality)
            "weighted_l1_misfit": float(misfit.sum() / weight.sum()),
            "distinct_scores": int(np.unique(np.round(scores, 9)).size),
            "train_accuracy": training_accuracy(wins, scores),
        }
        return scores
