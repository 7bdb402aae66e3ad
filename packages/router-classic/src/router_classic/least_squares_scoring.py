"""`least_squares_scoring`: closed-form least squares on pairwise win-rate differences, one score per model."""

from __future__ import annotations

import numpy as np

from router_classic._per_model import PerModelScorer, decisive_wins, training_accuracy
from router_classic.kernels.least_squares import normal_equations, residuals, solve
from router_core.data.types import Battles
from router_core.scorer import RunConfig
from router_core.specs import LeastSquaresScoringSpec


class LeastSquaresScorer(PerModelScorer):
    """Scores minimising sum_pairs w_ij (s_i - s_j - t_ij)^2 (t_ij: win-rate difference), then z-normalised."""

    spec_type = LeastSquaresScoringSpec
    spec: LeastSquaresScoringSpec

    def _fit_scores(self, train: Battles, run: RunConfig) -> np.ndarray:
        wins = decisive_wins(train)
        laplacian, rhs = normal_equations(wins, self.spec.pair_weighting == "count")
        raw = solve(laplacian, rhs)
        res = residuals(wins, raw)
        std = raw.std()
        scores = (raw - raw.mean()) / std if std > 0 else raw - raw.mean()
        self.summary_ = {
            "compared_pairs": int(res.size),
            "decisive_battles": int(wins.sum()),
            "mean_squared_residual": float(np.mean(res**2)),
            "train_accuracy": training_accuracy(wins, scores),
        }
        return scores
