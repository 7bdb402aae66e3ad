"""MCMF: a 4-node graph solved by hand, the LP it is the dual of, exact recovery, planted strengths."""

import numpy as np
import pytest
from scipy.optimize import linprog
from scipy.stats import spearmanr

from router_classic.kernels.mcmf import (
    circulation_arcs,
    min_cost_circulation,
    pair_targets,
    potentials,
    residual_arcs,
    shortest_distances,
)
from router_classic.mcmf_scoring import McmfScorer
from router_core.data.types import Battle, Battles
from router_core.specs import McmfScoringSpec
from router_core.testing import quiet_fit_args, synthetic_battles
from router_core.testing import relabelled as relabel

OPTS = quiet_fit_args(epochs=0)
EMPTY = Battles.from_records([])


def _solve(pair_i, pair_j, target, weight, k, scale=10_000):
    arcs = circulation_arcs(pair_i, pair_j, target, weight, scale)
    flow, cost = min_cost_circulation(k, *arcs)
    return potentials(k, *residual_arcs(*arcs, flow)) / scale, flow, cost / scale


def _scorer(**fields) -> McmfScorer:
    return McmfScorer(McmfScoringSpec(min_model_occurrences=1, **fields))


def test_four_node_cycle_solved_by_hand():
    # a beat b 3-0, b beat c 3-0, c beat d 3-0, but d beat a 1-0. Win-rate targets are all 1, so the cycle
    # a-b-c-d-a asks for gaps summing to 4 around a loop (impossible): the L1 optimum puts the whole misfit of 4
    # on the only weight-1 pair (d, a), keeping a-b, b-c, c-d at exactly 1: scores 1.5, 0.5, -0.5, -1.5.
    rows = [("a", "b")] * 3 + [("b", "c")] * 3 + [("c", "d")] * 3 + [("d", "a")]
    battles = Battles.from_records(Battle(model_a=win, model_b=lose, winner="model_a") for win, lose in rows)
    scorer = _scorer(target="win_rate_difference").fit(battles, EMPTY, *OPTS)
    np.testing.assert_allclose(scorer.score(["p"], list("abcd"))[0], [1.5, 0.5, -0.5, -1.5], atol=1e-12)
    assert scorer.summary_["flow_cost"] == -4.0  # minus the L1 misfit: one unit around the cycle at cost -4
    assert scorer.summary_["weighted_l1_misfit"] == pytest.approx(4 / 10)


def test_consistent_targets_are_recovered_exactly():
    planted = np.array([0.9, -0.4, 0.25, -1.1, 0.35])
    pair_i, pair_j = np.triu_indices(5, 1)
    scores, _, cost = _solve(pair_i, pair_j, planted[pair_i] - planted[pair_j], np.full(10, 7), 5)
    np.testing.assert_allclose(scores - scores.mean(), planted - planted.mean(), atol=1e-9)
    assert cost == 0  # every cycle costs 0 (flow may still circulate on them: zero-cost optima are not unique)


def test_potentials_solve_the_weighted_l1_problem():
    rng = np.random.default_rng(3)
    k = 7
    pair_i, pair_j = np.triu_indices(k, 1)
    target, weight = rng.normal(size=pair_i.size), rng.integers(1, 6, pair_i.size)
    scores, _, cost = _solve(pair_i, pair_j, target, weight, k, scale=10**6)
    ours = float(np.sum(weight * np.abs(scores[pair_i] - scores[pair_j] - target)))
    # the same problem as an LP: min sum w (u + v) subject to s_i - s_j - u + v = t, u, v >= 0
    n = pair_i.size
    a_eq = np.zeros((n, k + 2 * n))
    a_eq[np.arange(n), pair_i], a_eq[np.arange(n), pair_j] = 1, -1
    a_eq[np.arange(n), k + np.arange(n)], a_eq[np.arange(n), k + n + np.arange(n)] = -1, 1
    lp = linprog(np.r_[np.zeros(k), weight, weight], A_eq=a_eq, b_eq=target, bounds=[(None, None)] * k + [(0, None)] * 2 * n)
    assert ours == pytest.approx(lp.fun, abs=1e-4) and -cost == pytest.approx(lp.fun, abs=1e-4)


def test_bellman_ford_on_a_small_graph_and_negative_cycle():
    tails, heads, cost = np.array([0, 1, 0]), np.array([1, 2, 2]), np.array([-2.0, -3.0, 1.0])
    np.testing.assert_array_equal(shortest_distances(3, tails, heads, cost), [0.0, -2.0, -5.0])
    with pytest.raises(ValueError, match="negative cycle"):
        shortest_distances(2, np.array([0, 1]), np.array([1, 0]), np.array([-1.0, 0.5]))


@pytest.mark.parametrize("target", ["log_odds", "win_rate_difference"])
def test_planted_strengths_ordered_with_graded_scores(target: str):
    syn = synthetic_battles(20_000, 10, seed=31, tie_strength=0.3, popularity=0.5)
    scorer = _scorer(target=target).fit(syn.battles, EMPTY, *OPTS)
    planted = syn.planted(syn.battles.models)
    assert np.argmax(scorer.scores_) == np.argmax(planted) and np.argmin(scorer.scores_) == np.argmin(planted)
    assert spearmanr(scorer.scores_, planted).statistic >= 0.9
    assert scorer.summary_["distinct_scores"] == 10  # no collapse onto a few levels (the reference's failure)
    assert scorer.summary_["train_accuracy"] > 0.6


def test_pair_targets_smoothing_and_weights():
    wins = np.array([[0, 3, 0], [1, 0, 0], [0, 0, 0]], dtype=float)
    i, j, t, w = pair_targets(wins, log_odds=True, smoothing=0.5, count_weighted=True)
    assert (i.tolist(), j.tolist(), w.tolist()) == ([0], [1], [4])
    assert t[0] == pytest.approx(np.log(3.5 / 1.5))


def test_relabelling_models_permutes_scores():
    syn = synthetic_battles(4000, 6, seed=32)
    names = list(syn.battles.models)
    base = _scorer().fit(syn.battles, EMPTY, *OPTS).score(["p"], names)[0]
    rename = {m: f"x{(i * 5) % 6}" for i, m in enumerate(names)}
    relabelled = relabel(syn.battles, rename)
    np.testing.assert_allclose(_scorer().fit(relabelled, EMPTY, *OPTS).score(["p"], [rename[m] for m in names])[0], base)
