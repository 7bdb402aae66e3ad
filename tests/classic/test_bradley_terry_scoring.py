"""Bradley-Terry: hand-solved answers, an independent likelihood oracle, gradient checks, invariances, intervals."""

import numpy as np
import pytest
from scipy.optimize import approx_fprime, check_grad, minimize
from scipy.special import expit, logit
from scipy.stats import spearmanr

from router_classic.bradley_terry_scoring import BradleyTerryScorer
from router_classic.kernels import bradley_terry as bt
from router_core.data.types import Battle, Battles
from router_core.errors import DataError, UserError
from router_core.specs import BradleyTerryScoringSpec
from router_core.testing import quiet_fit_args, synthetic_battles
from router_core.testing import relabelled as relabel

OPTS = quiet_fit_args(epochs=0, seed=0)
EMPTY = Battles.from_records([])


def _spec(**fields) -> BradleyTerryScoringSpec:
    return BradleyTerryScoringSpec(min_model_occurrences=1, print_summary=False, **fields)


def _battles(rows: list[tuple[str, str, str]]) -> Battles:
    return Battles.from_records(Battle(model_a=a, model_b=b, winner=w) for a, b, w in rows)


def _fit(battles: Battles, **fields) -> BradleyTerryScorer:
    return BradleyTerryScorer(_spec(**fields)).fit(battles, EMPTY, *OPTS)


def _theta(scorer: BradleyTerryScorer, names) -> np.ndarray:
    return scorer.score(["p"], list(names))[0]


TWO = _battles([("a", "b", "model_a")] * 6 + [("b", "a", "model_a")] * 2 + [("a", "b", "tie")] * 4)


def test_two_models_davidson_solved_by_hand():
    # With two models the MLE matches the observed frequencies 6 : 2 : 4 exactly:
    # exp(d/2) : exp(-d/2) : nu = 6 : 2 : 4  =>  d = log(6/2), nu = 4 / sqrt(6 * 2).
    scorer = _fit(TWO, l2_reg=0.0, tie_model="davidson", confidence_intervals="none")
    theta = _theta(scorer, ["a", "b"])
    assert theta[0] - theta[1] == pytest.approx(np.log(3), abs=1e-9)
    assert theta.sum() == pytest.approx(0, abs=1e-12)
    assert scorer.tie_parameter_ == pytest.approx(np.log(4 / np.sqrt(12)), abs=1e-9)
    np.testing.assert_allclose(scorer.outcome_probabilities(["p"], ["a"], ["b"])[0], [0.5, 1 / 6, 1 / 3], atol=1e-9)


def test_two_models_rao_kupper_solved_by_hand():
    # sigmoid(d - kappa) = 6/12 and sigmoid(-d - kappa) = 2/12.
    scorer = _fit(TWO, l2_reg=0.0, tie_model="rao_kupper", confidence_intervals="none")
    theta = _theta(scorer, ["a", "b"])
    assert theta[0] - theta[1] == pytest.approx((logit(0.5) - logit(1 / 6)) / 2, abs=1e-9)
    assert scorer.tie_parameter_ == pytest.approx(-(logit(0.5) + logit(1 / 6)) / 2, abs=1e-9)


def test_three_models_with_exactly_consistent_counts():
    # Strengths 1 : 2 : 4 give P(b > a) = 2/3, P(c > b) = 2/3, P(c > a) = 4/5; counts in exactly those ratios.
    rows = [("b", "a", "model_a")] * 2 + [("a", "b", "model_a")] + [("c", "b", "model_a")] * 2 + [("b", "c", "model_a")]
    rows += [("c", "a", "model_a")] * 4 + [("a", "c", "model_a")]
    scorer = _fit(_battles(rows), l2_reg=0.0, tie_outcomes="drop", confidence_intervals="none")
    expected = np.log([1, 2, 4]) - np.log([1, 2, 4]).mean()
    np.testing.assert_allclose(_theta(scorer, "abc"), expected, atol=1e-9)


def _oracle(battles: Battles, weight: np.ndarray, tie_model: str, l2: float) -> np.ndarray:
    """Penalised MLE written straight from the model definitions, one battle at a time, solved by BFGS."""
    k = len(battles.models)

    def nll(x: np.ndarray) -> float:
        theta, tau = x[:k], x[k]
        total = 0.0
        for a, b, w, c in zip(battles.model_a, battles.model_b, battles.winner, weight, strict=True):
            if tie_model == "davidson":
                pa, pb, pt = np.exp(theta[a]), np.exp(theta[b]), np.exp(tau) * np.sqrt(np.exp(theta[a] + theta[b]))
                probs = np.array([pa, pb, pt]) / (pa + pb + pt)
            else:
                pa, pb = expit(theta[a] - theta[b] - tau), expit(theta[b] - theta[a] - tau)
                probs = np.array([pa, pb, 1 - pa - pb])
            total -= c * np.log(probs[min(int(w), 2)])
        return total + 0.5 * l2 * theta @ theta

    tau_bound = (None, None) if tie_model == "davidson" else (1e-6, None)  # log(nu) is free; kappa > 0
    start = np.append(np.zeros(k), 0.5)
    return minimize(nll, start, method="L-BFGS-B", bounds=[(None, None)] * k + [tau_bound], tol=1e-12).x


@pytest.mark.parametrize("tie_model", ["davidson", "rao_kupper"])
def test_matches_a_direct_likelihood_oracle_with_weights(tie_model: str):
    syn = synthetic_battles(150, 4, seed=2, tie_strength=0.5, both_bad_rate=0.1)
    weight = np.random.default_rng(0).uniform(0.2, 2.0, len(syn.battles))
    scorer = BradleyTerryScorer(_spec(tie_model=tie_model, l2_reg=0.3, confidence_intervals="none"))
    scorer.fit(syn.battles, EMPTY, *OPTS, sample_weight=weight)
    expected = _oracle(syn.battles, weight, tie_model, 0.3)
    np.testing.assert_allclose(scorer.scores_, expected[:4], atol=1e-4)
    assert scorer.tie_parameter_ == pytest.approx(expected[4], abs=1e-4)


@pytest.mark.parametrize("tie_model", [bt.NO_TIES, bt.DAVIDSON, bt.RAO_KUPPER])
@pytest.mark.parametrize("l2", [0.0, 0.5])
def test_gradient_and_hessian_of_the_loss(tie_model: int, l2: float):
    rng = np.random.default_rng(tie_model)
    k, n = 5, 400
    a = rng.integers(0, k, n)
    b = (a + rng.integers(1, k, n)) % k
    outcome = rng.integers(0, 3 if tie_model else 2, n)
    pair_i, pair_j, counts, _, _ = bt.pair_outcomes(a, b, outcome, rng.uniform(0.5, 1.5, n), k)
    groups = np.zeros(k, dtype=np.int64)
    x = rng.normal(size=k) if tie_model == bt.NO_TIES else np.append(rng.normal(size=k), 0.7)

    def value(z):
        return bt.objective(z, pair_i, pair_j, counts, tie_model, l2, groups, False)[0]

    def grad(z):
        return bt.objective(z, pair_i, pair_j, counts, tie_model, l2, groups)[1]

    assert check_grad(value, grad, x) < 1e-4 * max(1.0, np.abs(grad(x)).max())
    hess = bt.objective(x, pair_i, pair_j, counts, tie_model, l2, groups)[2]
    numeric = np.array([approx_fprime(x, lambda z, i=i: grad(z)[i], 1e-6) for i in range(x.size)])
    np.testing.assert_allclose(hess, numeric, rtol=1e-4, atol=1e-3)


def test_weight_k_equals_k_duplicated_rows():
    syn = synthetic_battles(300, 5, seed=4, tie_strength=0.3)
    weight = np.random.default_rng(1).integers(0, 4, len(syn.battles))
    weighted = BradleyTerryScorer(_spec()).fit(syn.battles, EMPTY, *OPTS, sample_weight=weight.astype(float))
    duplicated = syn.battles.subset(np.repeat(np.arange(len(syn.battles)), weight))
    plain = _fit(duplicated)
    names = list(syn.battles.models)
    np.testing.assert_allclose(_theta(weighted, names), _theta(plain, names), atol=1e-9)
    assert weighted.tie_parameter_ == pytest.approx(plain.tie_parameter_, abs=1e-9)


def test_invariant_to_battle_order_side_swaps_and_relabelling():
    syn = synthetic_battles(2000, 6, seed=5, tie_strength=0.4, both_bad_rate=0.05)
    names = list(syn.battles.models)
    base = _theta(_fit(syn.battles, tie_model="rao_kupper"), names)
    records = syn.battles.records
    shuffled = Battles.from_records([records[i] for i in np.random.default_rng(0).permutation(len(records))])
    np.testing.assert_allclose(_theta(_fit(shuffled, tie_model="rao_kupper"), names), base, atol=1e-10)
    flip = {"model_a": "model_b", "model_b": "model_a", "tie": "tie", "both_bad": "both_bad"}
    swapped = Battles.from_records(Battle(model_a=r.model_b, model_b=r.model_a, winner=flip[r.winner]) for r in records)
    np.testing.assert_allclose(_theta(_fit(swapped, tie_model="rao_kupper"), names), base, atol=1e-10)
    rename = {m: f"renamed-{(i * 7) % 6}" for i, m in enumerate(names)}
    relabelled = relabel(syn.battles, rename)
    scorer = _fit(relabelled, tie_model="rao_kupper")
    np.testing.assert_allclose(_theta(scorer, [rename[m] for m in names]), base, atol=1e-10)


@pytest.mark.parametrize("fields", [{"tie_model": "davidson"}, {"tie_model": "rao_kupper"}, {"tie_outcomes": "drop"}])
def test_recovers_planted_strengths(fields):
    syn = synthetic_battles(20_000, 12, seed=6, tie_strength=0.4, both_bad_rate=0.05, popularity=0.5)
    scorer = _fit(syn.battles, **fields)
    assert spearmanr(scorer.scores_, syn.planted(syn.battles.models)).statistic >= 0.95


def test_sandwich_and_bootstrap_intervals_agree_and_cover_the_truth():
    syn = synthetic_battles(8000, 8, seed=7, tie_strength=0.5)
    scorer = _fit(syn.battles, l2_reg=0.0, confidence_intervals="both", bootstrap_rounds=200)
    sandwich, boot = (np.array(scorer.intervals_[m]["se"]) for m in ("sandwich", "bootstrap"))
    np.testing.assert_allclose(boot / sandwich, 1.0, atol=0.25)
    planted = syn.planted(syn.battles.models)
    lower, upper = (np.array(scorer.intervals_["sandwich"][key]) for key in ("lower", "upper"))
    assert np.mean((lower <= planted) & (planted <= upper)) >= 0.75
    assert np.all(lower < scorer.scores_) and np.all(scorer.scores_ < upper)


def test_bootstrap_with_weights_is_seeded(tmp_path):
    syn = synthetic_battles(500, 4, seed=8, tie_strength=0.3)
    weight = np.random.default_rng(2).uniform(0.5, 1.5, len(syn.battles))
    spec = _spec(confidence_intervals="bootstrap", bootstrap_rounds=20)
    first = BradleyTerryScorer(spec).fit(syn.battles, EMPTY, *OPTS, sample_weight=weight)
    second = BradleyTerryScorer(spec).fit(syn.battles, EMPTY, *OPTS, sample_weight=weight)
    assert first.intervals_ == second.intervals_
    first.save(tmp_path)
    loaded = BradleyTerryScorer.load(tmp_path, first.spec)
    assert loaded.intervals_ == first.intervals_ and loaded.tie_parameter_ == first.tie_parameter_
    probe = (["p", "q"], ["model-000", "model-001"], ["model-002", "unknown"])
    np.testing.assert_array_equal(loaded.outcome_probabilities(*probe), first.outcome_probabilities(*probe))


def test_outcome_probabilities_sum_to_one_and_tie_column_without_ties():
    syn = synthetic_battles(1000, 5, seed=9, tie_strength=0.3)
    names = list(syn.battles.models)
    for fields, has_ties in (({}, True), ({"tie_outcomes": "drop"}, False)):
        probs = _fit(syn.battles, **fields).outcome_probabilities(["p"] * 3, names[:2] + ["x"], names[2:4] + [names[0]])
        np.testing.assert_allclose(probs[:2].sum(axis=1), 1.0)
        assert (probs[:2, 2] > 0).all() == has_ties and np.isnan(probs[2]).all()


def test_disconnected_groups_without_prior_are_centred_each():
    rows = [("a", "b", "model_a")] * 3 + [("b", "a", "model_a")] + [("c", "d", "model_a")] + [("d", "c", "model_a")] * 2
    scorer = _fit(_battles(rows), l2_reg=0.0, tie_outcomes="drop")
    theta = _theta(scorer, "abcd")
    np.testing.assert_allclose(theta, [np.log(3) / 2, -np.log(3) / 2, -np.log(2) / 2, np.log(2) / 2], atol=1e-9)


def test_user_mistakes_raise_clear_errors():
    syn = synthetic_battles(50, 3, seed=1)
    with pytest.raises(UserError, match="one weight per training battle"):
        BradleyTerryScorer(_spec()).fit(syn.battles, EMPTY, *OPTS, sample_weight=np.ones(3))
    with pytest.raises(UserError, match="non-negative"):
        BradleyTerryScorer(_spec()).fit(syn.battles, EMPTY, *OPTS, sample_weight=-np.ones(50))
    with pytest.raises(DataError, match="no decisive battles"):
        _fit(_battles([("a", "b", "tie"), ("a", "b", "both_bad")]))
