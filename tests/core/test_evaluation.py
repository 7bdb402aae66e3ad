"""Evaluation metrics, the logistic link, and `evaluate` on a scorer with fixed scores."""

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from router_core.data.types import Battle, Battles
from router_core.evaluation import (
    CALIBRATION_FILE,
    LogisticLink,
    calibrate,
    evaluate,
    fit_logistic_link,
    with_calibration,
)
from router_core.metrics import bootstrap_interval, brier_score, categorical_log_loss, log_loss


class FixedScorer:
    """Test double: one fixed score per model, NaN for others."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores

    def score(self, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
        row = [self.scores.get(m, np.nan) for m in models]
        return np.tile(np.array(row, dtype=np.float64), (len(prompts), 1))


class FixedProbabilities(FixedScorer):
    """Test double with its own outcome probabilities: P(A) = 0.6, P(B) = 0.2, P(tie) = 0.2 for known models."""

    def outcome_probabilities(self, prompts: Sequence[str], model_a: Sequence[str], model_b: Sequence[str]):
        known = np.array([a in self.scores and b in self.scores for a, b in zip(model_a, model_b, strict=True)])
        return np.where(known[:, None], np.array([[0.6, 0.2, 0.2]]), np.nan)


def _battles(rows) -> Battles:
    return Battles.from_records(Battle(model_a=a, model_b=b, winner=w, categories=tuple(c)) for a, b, w, c in rows)


ROWS = [("x", "y", "model_a", ["code"]), ("x", "y", "model_b", ["code"]), ("y", "x", "model_b", ["math"]),
        ("x", "y", "tie", ["math"]), ("x", "z", "model_a", ["code"]), ("y", "x", "both_bad", [])]  # fmt: skip


def test_log_loss_brier_and_categorical_known_values():
    p, y = np.array([0.8, 0.3]), np.array([1.0, 0.0])
    assert log_loss(p, y) == pytest.approx(-(np.log(0.8) + np.log(0.7)) / 2)
    assert brier_score(p, y) == pytest.approx((0.04 + 0.09) / 2)
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    assert categorical_log_loss(probs, np.array([1, 2])) == pytest.approx(-(np.log(0.3) + np.log(0.8)) / 2)
    assert np.isnan(log_loss(np.zeros(0), np.zeros(0))) and np.isnan(brier_score(np.zeros(0), np.zeros(0)))


def test_bootstrap_interval_matches_the_binomial_width():
    values = (np.random.default_rng(0).random(4000) < 0.7).astype(float)
    low, high = bootstrap_interval(values, rounds=2000, seed=1)
    half = 1.96 * np.sqrt(values.mean() * (1 - values.mean()) / values.size)
    assert low < values.mean() < high and (high - low) / 2 == pytest.approx(half, rel=0.1)
    assert bootstrap_interval(values, rounds=200, seed=1) == bootstrap_interval(values, rounds=200, seed=1)


def test_logistic_link_recovers_a_planted_coefficient():
    rng = np.random.default_rng(2)
    diff = rng.normal(size=20_000)
    a_won = (rng.random(diff.size) < 1 / (1 + np.exp(-2.0 * diff))).astype(float)
    link = fit_logistic_link(diff, a_won)
    assert link.coef == pytest.approx(2.0, abs=0.1) and link.n_battles == 20_000
    assert link.probability(np.array([1.0]), np.array([0.0]))[0] == pytest.approx(1 / (1 + np.exp(-link.coef)))


def test_logistic_link_stays_finite_and_non_negative():
    diff = np.array([1.0, 2.0, -1.0, -3.0])
    separable = fit_logistic_link(diff, np.array([1.0, 1.0, 0.0, 0.0]))
    assert np.isfinite(separable.coef) and separable.coef > 3
    assert fit_logistic_link(diff, np.array([0.0, 0.0, 1.0, 1.0])).coef == 0.0  # scores backwards: no link


def test_calibration_is_written_with_the_state_and_read_back(tmp_path: Path):
    scorer = FixedScorer({"x": 1.0, "y": 0.0})
    link = calibrate(scorer, _battles(ROWS))
    assert link is not None and link.n_battles == 3  # decisive battles between known models
    with_calibration(lambda d: (d / "state.json").write_text("{}"), link)(tmp_path)
    assert json.loads((tmp_path / CALIBRATION_FILE).read_text())["logistic_link"]["coef"] == link.coef
    assert LogisticLink.load(tmp_path) == link
    assert LogisticLink.load(tmp_path / "missing") is None


def test_evaluate_score_only_model_with_link():
    battles = _battles(ROWS)
    link = LogisticLink(coef=1.0, n_battles=10, train_log_loss=0.6)
    result = evaluate(FixedScorer({"x": 1.0, "y": 0.0}), battles, link, bootstrap_rounds=100)
    # decisive and known: x>y (right), y>x with x as A (wrong), y-x with x winning as B (right); x-z skipped
    assert result["pairwise_accuracy"] == pytest.approx(2 / 3) and result["n_pairs"] == 3
    assert result["n_skipped"] == 1 and result["n_battles"] == 6 and result["n_ties"] == 2
    p = 1 / (1 + np.exp(-1.0))
    assert result["log_loss"] == pytest.approx(-(2 * np.log(p) + np.log(1 - p)) / 3)
    assert result["brier"] == pytest.approx((2 * (1 - p) ** 2 + p**2) / 3)
    assert "tie_log_loss" not in result and result["probabilities"] == "logistic_link"
    assert result["per_category"]["code"]["n_pairs"] == 2 and result["per_category"]["math"]["n_pairs"] == 1
    low, high = result["pairwise_accuracy_ci"]
    assert 0 <= low <= 2 / 3 <= high <= 1


def test_evaluate_model_with_its_own_probabilities_and_without_any():
    battles = _battles(ROWS)
    own = evaluate(FixedProbabilities({"x": 1.0, "y": 0.0}), battles, None, bootstrap_rounds=0)
    assert own["probabilities"] == "model" and "pairwise_accuracy_ci" not in own
    # P(A beats B | decisive) = 0.75; decisive known outcomes A, B, B
    assert own["log_loss"] == pytest.approx(-(np.log(0.75) + 2 * np.log(0.25)) / 3)
    # all five known battles, both_bad counted as a tie: A, B, B, tie, tie
    assert own["tie_log_loss"] == pytest.approx(-(np.log(0.6) + 2 * np.log(0.2) + 2 * np.log(0.2)) / 5)
    bare = evaluate(FixedScorer({"x": 1.0, "y": 0.0}), battles, None, bootstrap_rounds=0)
    assert bare["log_loss"] is None and bare["probabilities"] is None


class PromptScorer(FixedScorer):
    """Test double whose preference flips with the prompt: x wins "code" prompts, y wins the others."""

    def score(self, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
        out = super().score(prompts, models, batch_size)
        flip = np.array([-1.0 if p == "code" else 1.0 for p in prompts])[:, None]
        return out * flip


def _prompted(rows) -> Battles:
    return Battles.from_records(Battle(model_a=a, model_b=b, winner=w, prompt=p) for a, b, w, p in rows)


def test_all_pairs_use_the_unknown_model_fallback_and_coverage_counts_known_pairs():
    # z is unknown: in all_pairs it gets the mean of the known candidates (x 1, y 0 -> 0.5)
    battles = _prompted([("x", "y", "model_a", "p"), ("y", "x", "model_b", "p"), ("z", "y", "model_a", "p"),
                         ("x", "z", "model_a", "p"), ("x", "y", "tie", "p")])  # fmt: skip
    result = evaluate(FixedScorer({"x": 1.0, "y": 0.0}), battles, LogisticLink(1.0, 0, 0.0), bootstrap_rounds=0,
                      progress=False)  # fmt: skip
    assert result["n_pairs"] == 2 and result["pairwise_accuracy"] == 1.0
    assert result["coverage"] == pytest.approx(2 / 4)
    assert result["all_pairs"]["n_pairs"] == 4 and result["all_pairs"]["pairwise_accuracy"] == 1.0  # z 0.5 > y 0, x > z
    p = 1 / (1 + np.exp(-np.array([1.0, 1.0, 0.5, 0.5])))
    assert result["all_pairs"]["log_loss"] == pytest.approx(float(-np.mean(np.log(p))))


def test_prompt_sensitivity_is_zero_for_prompt_agnostic_scores_and_positive_when_the_prompt_matters():
    rows = [("x", "y", "model_b" if i % 2 else "model_a", "code" if i % 2 else "poem") for i in range(40)]
    battles = _prompted(rows)
    agnostic = evaluate(FixedScorer({"x": 1.0, "y": 0.0}), battles, LogisticLink(1.0, 0, 0.0), bootstrap_rounds=0,
                        progress=False, prompt_sensitivity=True)["prompt_sensitivity"]  # fmt: skip
    assert agnostic["accuracy_drop"] == 0.0 and agnostic["log_loss_rise"] == 0.0
    aware = evaluate(PromptScorer({"x": 1.0, "y": 0.0}), battles, LogisticLink(1.0, 0, 0.0), bootstrap_rounds=0,
                     progress=False, prompt_sensitivity=True)  # fmt: skip
    assert aware["pairwise_accuracy"] == 1.0
    assert aware["prompt_sensitivity"]["accuracy_drop"] > 0.2 and aware["prompt_sensitivity"]["log_loss_rise"] > 0.1


class _ScaledDavidson:
    """Outcome probabilities of a Davidson model whose log-odds are `c` times the score gap."""

    def __init__(self, scores: dict[str, float], c: float, tie: float = 0.5) -> None:
        self.scores, self.c, self.tie = scores, c, tie

    def outcome_probabilities(self, prompts, model_a, model_b):
        d = self.c * (np.array([self.scores[m] for m in model_a]) - np.array([self.scores[m] for m in model_b]))
        raw = np.stack([np.exp(d / 2), np.exp(-d / 2), np.full(d.shape, self.tie)], axis=1)
        return raw / raw.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("c", [1.0, 0.37, 2.5])
def test_native_log_odds_coef_reads_the_scale_off_the_model(c):
    from router_core.evaluation import native_log_odds_coef

    scores = {f"m{i}": float(s) for i, s in enumerate(np.random.default_rng(0).normal(size=7))}
    model = _ScaledDavidson(scores, c)
    assert native_log_odds_coef(model, list(scores), np.array(list(scores.values()))) == pytest.approx(c, rel=1e-12)
    assert native_log_odds_coef(model, ["m0"], np.array([0.0])) == 1.0  # no pair to read it from


def test_calibrate_with_a_fixed_coef_reports_its_log_loss():
    from router_core.evaluation import link_at

    diff, a_won = np.array([1.0, -2.0, 0.5]), np.array([1.0, 0.0, 0.0])
    link = link_at(1.0, diff, a_won)
    expected = -np.mean(np.log([1 / (1 + np.exp(-1.0)), 1 / (1 + np.exp(-2.0)), 1 / (1 + np.exp(0.5))]))
    assert (link.coef, link.n_battles) == (1.0, 3) and link.train_log_loss == pytest.approx(expected)
