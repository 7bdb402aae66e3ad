"""Least squares: hand-solved normal equations (unit and count weights), BT equivalence, recovery, invariance."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from router_classic.bradley_terry_scoring import BradleyTerryScorer
from router_classic.kernels.least_squares import normal_equations, solve
from router_classic.least_squares_scoring import LeastSquaresScorer
from router_core.data.types import Battle, Battles
from router_core.errors import DataError
from router_core.specs import BradleyTerryScoringSpec, LeastSquaresScoringSpec
from router_core.testing import quiet_fit_args, synthetic_battles
from router_core.testing import relabelled as relabel

OPTS = quiet_fit_args(epochs=0)
EMPTY = Battles.from_records([])
# a beat b 3-1 (t = 0.5), b beat c 3-1 (t = 0.5), a and c 1-1 (t = 0); plus ties, which are ignored
ROWS = [("a", "b", "model_a")] * 3 + [("a", "b", "model_b")] + [("b", "c", "model_a")] * 3 + [("c", "b", "model_a")]
ROWS += [("a", "c", "model_a"), ("c", "a", "model_a"), ("a", "c", "tie"), ("b", "c", "both_bad")]
HAND = Battles.from_records(Battle(model_a=a, model_b=b, winner=w) for a, b, w in ROWS)


def _scorer(**fields) -> LeastSquaresScorer:
    return LeastSquaresScorer(LeastSquaresScoringSpec(min_model_occurrences=1, **fields))


def _wins() -> np.ndarray:
    wins = np.zeros((3, 3))
    wins[0, 1], wins[1, 0], wins[1, 2], wins[2, 1], wins[0, 2], wins[2, 0] = 3, 1, 3, 1, 1, 1
    return wins


def test_unit_weights_solved_by_hand():
    # L = 3I - 11^T and b = (0.5, 0, -0.5); with mean 0, L s = 3 s, so s = b / 3.
    laplacian, rhs = normal_equations(_wins(), count_weighted=False)
    np.testing.assert_allclose(rhs, [0.5, 0.0, -0.5])
    np.testing.assert_allclose(solve(laplacian, rhs), [1 / 6, 0, -1 / 6], atol=1e-12)
    scores = _scorer().fit(HAND, EMPTY, *OPTS).score(["p"], ["a", "b", "c"])[0]
    np.testing.assert_allclose(scores, [np.sqrt(1.5), 0, -np.sqrt(1.5)], atol=1e-12)  # z-normalised


def test_count_weights_solved_by_hand():
    # weights 4, 4, 2: rows give 6x + 2x = 2 with s = (x, 0, -x), so x = 1/4.
    laplacian, rhs = normal_equations(_wins(), count_weighted=True)
    np.testing.assert_allclose(solve(laplacian, rhs), [0.25, 0, -0.25], atol=1e-12)


def test_same_order_as_bradley_terry_without_ties():
    syn = synthetic_battles(5000, 10, seed=11, spread=2.0)
    ls = _scorer(pair_weighting="count").fit(syn.battles, EMPTY, *OPTS).scores_
    bt_spec = BradleyTerryScoringSpec(min_model_occurrences=1, tie_outcomes="drop", confidence_intervals="none")
    bt = BradleyTerryScorer(bt_spec).fit(syn.battles, EMPTY, *OPTS).scores_
    assert list(np.argsort(ls)) == list(np.argsort(bt))


@pytest.mark.parametrize("weighting", ["unit", "count"])
def test_recovers_planted_strengths(weighting: str):
    syn = synthetic_battles(20_000, 12, seed=12, tie_strength=0.3, popularity=0.5)
    scores = _scorer(pair_weighting=weighting).fit(syn.battles, EMPTY, *OPTS).scores_
    assert spearmanr(scores, syn.planted(syn.battles.models)).statistic >= 0.95


def test_relabelling_models_permutes_scores():
    syn = synthetic_battles(3000, 6, seed=13)
    names = list(syn.battles.models)
    base = _scorer().fit(syn.battles, EMPTY, *OPTS).score(["p"], names)[0]
    rename = {m: f"x{(i * 5) % 6}" for i, m in enumerate(names)}
    relabelled = relabel(syn.battles, rename)
    scores = _scorer().fit(relabelled, EMPTY, *OPTS).score(["p"], [rename[m] for m in names])[0]
    np.testing.assert_allclose(scores, base, atol=1e-10)


def test_summary_is_logged_and_saved(tmp_path):
    lines: list[str] = []
    scorer = _scorer().fit(HAND, EMPTY, *quiet_fit_args(log=lines.append))
    assert lines and "train_accuracy" in lines[0]
    assert scorer.summary_["compared_pairs"] == 3 and scorer.summary_["decisive_battles"] == 10
    scorer.save(tmp_path)
    assert LeastSquaresScorer.load(tmp_path, scorer.spec).summary_ == scorer.summary_


def test_only_ties_is_a_data_error():
    ties = Battles.from_records([Battle(model_a="a", model_b="b", winner="tie")])
    with pytest.raises(DataError, match="no decisive battles"):
        _scorer().fit(ties, EMPTY, *OPTS)
