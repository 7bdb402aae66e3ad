"""`bradley_terry_scoring`: maximum-likelihood Bradley-Terry with a Davidson or Rao-Kupper tie model.

Scores are log-strengths theta (natural-log scale, mean 0). The fit also gives per-model 95% intervals (sandwich
standard errors and / or a percentile bootstrap over battles) and outcome probabilities P(A), P(B), P(tie).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any, Self

import numpy as np

from router_classic._per_model import PerModelScorer
from router_classic.kernels import bradley_terry as bt
from router_classic.kernels.pairs import components
from router_core.data.types import BOTH_BAD, TIE, Battles
from router_core.errors import DataError, UserError
from router_core.sampling import balanced_weights
from router_core.scorer import RunConfig, TrainHooks
from router_core.specs import BradleyTerryScoringSpec

log = logging.getLogger(__name__)
TIE_MODELS = {"davidson": bt.DAVIDSON, "rao_kupper": bt.RAO_KUPPER}


class BradleyTerryScorer(PerModelScorer):
    """Fitted state: `scores_` (theta), `tie_model_` (kernel code), `tie_parameter_`, `intervals_`."""

    spec_type = BradleyTerryScoringSpec
    spec: BradleyTerryScoringSpec

    def fit(
        self, train: Battles, selection: Battles, run: RunConfig, hooks: TrainHooks, sample_weight: np.ndarray | None = None
    ) -> Self:
        """Maximise the penalised likelihood; `sample_weight` (shape (n,), >= 0) weighs each training battle."""
        self._sample_weight = _checked_weights(sample_weight, len(train))
        try:
            return super().fit(train, selection, run, hooks)
        finally:
            del self._sample_weight

    def _fit_scores(self, train: Battles, run: RunConfig) -> np.ndarray:
        spec, k = self.spec, len(train.models)
        outcome = self._outcomes(train.winner)
        weight = self._weights(train, outcome)
        pair_i, pair_j, counts, counts_sq, cell = bt.pair_outcomes(train.model_a, train.model_b, outcome, weight, k)
        if counts[:, :2].sum() <= 0:
            raise DataError("no decisive battles with positive weight: Bradley-Terry has nothing to fit")
        tie_weight = counts[:, 2].sum()
        self.tie_model_ = TIE_MODELS[spec.tie_model] if spec.tie_outcomes != "drop" and tie_weight > 0 else bt.NO_TIES
        if spec.tie_outcomes != "drop" and tie_weight == 0:
            log.info("no ties among the training battles: fitting plain Bradley-Terry")
        problem = (pair_i, pair_j, counts, self.tie_model_, spec.l2_reg, _groups(pair_i, pair_j, k))
        x, iterations, converged = bt.newton(self._start(k, counts), *problem, spec.max_iter, spec.tol)
        if not converged:
            log.warning("Bradley-Terry did not converge in %d Newton steps (a model that never loses or never wins "
                        "has no finite strength without a prior: set l2_reg > 0)", spec.max_iter)  # fmt: skip
        self.tie_parameter_ = float(x[k]) if x.shape[0] > k else 0.0
        self.intervals_ = self._intervals(x, problem, counts_sq, cell, weight, run.seed)
        self.summary_ = self._summary(train, x, problem, iterations, converged)
        return x[:k]

    def _outcomes(self, winner: np.ndarray) -> np.ndarray:
        outcome = winner.astype(np.int64)
        keep_tie = self.spec.tie_outcomes != "drop"
        keep_both_bad = self.spec.tie_outcomes == "ties_and_both_bad"
        outcome = np.where(winner == TIE, 2 if keep_tie else -1, outcome)
        return np.where(winner == BOTH_BAD, 2 if keep_both_bad else -1, outcome)

    def _weights(self, train: Battles, outcome: np.ndarray) -> np.ndarray:
        weight = np.ones(len(train)) if self._sample_weight is None else self._sample_weight.copy()
        if self.spec.balance_model_samples:
            weight *= balanced_weights(train.model_a, train.model_b, len(train.models), counted=outcome >= 0)
        return weight

    def _start(self, k: int, counts: np.ndarray) -> np.ndarray:
        if self.tie_model_ == bt.NO_TIES:
            return np.zeros(k)
        tie_rate = float(np.clip(counts[:, 2].sum() / counts.sum(), 1e-6, 1 - 1e-6))
        if self.tie_model_ == bt.DAVIDSON:  # with equal strengths P(tie) = nu / (2 + nu)
            return np.append(np.zeros(k), np.log(2 * tie_rate / (1 - tie_rate)))
        return np.append(np.zeros(k), np.log((1 + tie_rate) / (1 - tie_rate)))  # P(tie) = 1 - 2 sigmoid(-kappa)

    def _intervals(
        self, x: np.ndarray, problem: tuple[Any, ...], counts_sq: np.ndarray, cell: np.ndarray, weight: np.ndarray,
        seed: int,
    ) -> dict[str, dict[str, list[float]]]:  # fmt: skip
        method, k = self.spec.confidence_intervals, problem[-1].shape[0]
        z = NormalDist().inv_cdf(0.5 + self.spec.confidence_level / 2)
        intervals: dict[str, dict[str, list[float]]] = {}
        if method in ("sandwich", "both"):
            _, _, hess = bt.objective(x, *problem)
            assert hess is not None
            meat = bt.score_outer(x, problem[0], problem[1], counts_sq, self.tie_model_, k)
            se = np.sqrt(np.clip(np.diag(bt.sandwich_covariance(hess, meat))[:k], 0, None))
            intervals["sandwich"] = _interval(se, x[:k] - z * se, x[:k] + z * se)
        if method in ("bootstrap", "both"):
            draws = self._bootstrap(x, problem, cell, weight, np.random.default_rng(seed))
            alpha = 1 - self.spec.confidence_level
            low, high = np.quantile(draws, [alpha / 2, 1 - alpha / 2], axis=0)
            intervals["bootstrap"] = _interval(draws.std(axis=0, ddof=1), low, high)
        return intervals

    def _bootstrap(
        self, x: np.ndarray, problem: tuple[Any, ...], cell: np.ndarray, weight: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """theta refitted on battles resampled with replacement, shape (rounds, k)."""
        pair_i, pair_j, counts, tie_model, l2, groups = problem
        k, used = groups.shape[0], cell >= 0
        n, cells = int(used.sum()), counts.ravel()
        uniform = bool(np.all(weight[used] == weight[used][0]))
        draws = np.empty((self.spec.bootstrap_rounds, k))
        for r in range(self.spec.bootstrap_rounds):
            if uniform:  # resampling n battles = drawing cell counts from a multinomial over cells
                resampled = rng.multinomial(n, cells / cells.sum()) * weight[used][0]
            else:
                times = np.bincount(rng.integers(0, n, n), minlength=n)
                resampled = np.bincount(cell[used], weights=weight[used] * times, minlength=cells.size)
            # 1e-6 is far below the spread of the draws, and saves the last Newton steps of every refit
            fit = bt.newton(x, pair_i, pair_j, resampled.reshape(-1, 3).astype(np.float64), tie_model, l2, groups,
                            self.spec.max_iter, max(self.spec.tol, 1e-6))  # fmt: skip
            draws[r] = fit[0][:k]
        return draws

    def _summary(
        self, train: Battles, x: np.ndarray, problem: tuple[Any, ...], iterations: int, converged: bool
    ) -> dict[str, Any]:
        value = bt.objective(x, *problem, with_derivatives=False)[0]
        counts = problem[2]
        k = len(train.models)
        best = int(np.argmax(x[:k]))
        summary: dict[str, Any] = {
            "battles_used": float(counts.sum()),
            "ties_used": float(counts[:, 2].sum()),
            "tie_model": {bt.NO_TIES: "none", bt.DAVIDSON: "davidson", bt.RAO_KUPPER: "rao_kupper"}[self.tie_model_],
            "tie_parameter": self.tie_parameter_,
            "newton_iterations": iterations,
            "converged": converged,
            "objective_per_battle": value / float(counts.sum()),
            "top_model": train.models[best],
        }
        for method, values in self.intervals_.items():
            summary[f"top_model_{method}_interval"] = [round(values["lower"][best], 4), round(values["upper"][best], 4)]
        return summary

    def outcome_probabilities(
        self, prompts: Sequence[str], model_a: Sequence[str], model_b: Sequence[str]
    ) -> np.ndarray:
        """P(A wins), P(B wins), P(tie) per battle, shape (n, 3); a NaN row where a model is unknown.

        Without a tie model (tie_outcomes = drop, or no ties in training) the tie column is 0.
        """
        a = np.array([self.index_.get(m, -1) for m in model_a], dtype=np.int64)
        b = np.array([self.index_.get(m, -1) for m in model_b], dtype=np.int64)
        known = (a >= 0) & (b >= 0)
        out = np.full((len(a), 3), np.nan)
        out[known] = bt.probabilities(self.scores_[a[known]] - self.scores_[b[known]], self.tie_parameter_,
                                      self.tie_model_)  # fmt: skip
        return out

    def _extra_state(self) -> dict[str, Any]:
        return {"tie_model": self.tie_model_, "tie_parameter": self.tie_parameter_, "intervals": self.intervals_}

    def _restore(self, state: dict[str, Any]) -> None:
        self.tie_model_ = int(state["tie_model"])
        self.tie_parameter_ = float(state["tie_parameter"])
        self.intervals_ = state["intervals"]


def _checked_weights(sample_weight: np.ndarray | None, n: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    weight = np.asarray(sample_weight, dtype=np.float64)
    if weight.shape != (n,):
        raise UserError(f"sample_weight must have one weight per training battle: shape ({n},), got {weight.shape}")
    if not np.all(np.isfinite(weight)) or np.any(weight < 0):
        raise UserError("sample_weight must be finite and non-negative")
    return weight


def _groups(pair_i: np.ndarray, pair_j: np.ndarray, k: int) -> np.ndarray:
    adjacency = np.zeros((k, k), dtype=bool)
    adjacency[pair_i, pair_j] = True
    return components(adjacency)


def _interval(se: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> dict[str, list[float]]:
    return {"se": se.tolist(), "lower": lower.tolist(), "upper": upper.tolist()}
