"""gradient_boosting: the objective's gradient and hessian against finite differences, and planted-skill recovery."""

from dataclasses import replace

import numpy as np
import pytest

from router_classic.gradient_boosting import GradientBoostingScorer
from router_classic.kernels.pairwise_objective import BRADLEY_TERRY, MARGIN_RANKING, pairwise_objective
from router_core.data.types import Battles
from router_core.metrics import pairwise_accuracy
from router_core.scoring import battle_scores
from router_core.specs import GradientBoostingSpec
from router_core.synthetic import PlantedSkills, best_prompt_agnostic_accuracy
from router_core.testing import quiet_fit_args


@pytest.mark.parametrize("kind", [MARGIN_RANKING, BRADLEY_TERRY])
def test_gradient_matches_finite_differences(kind):
    rng = np.random.default_rng(0)
    n = 400
    a, b = rng.normal(size=n), rng.normal(size=n)
    winner, weight = rng.integers(0, 4, n), rng.uniform(0.5, 2.0, n)
    args = (winner, weight, kind, 0.1, 0.3, 0.01)
    _, grad_a, grad_b, hess_a, _ = pairwise_objective(a, b, *args)
    h = 1e-6
    fd_a = (pairwise_objective(a + h, b, *args)[0] - pairwise_objective(a - h, b, *args)[0]) / (2 * h)
    fd_b = (pairwise_objective(a, b + h, *args)[0] - pairwise_objective(a, b - h, *args)[0]) / (2 * h)
    np.testing.assert_allclose(grad_a, fd_a, atol=1e-5)
    np.testing.assert_allclose(grad_b, fd_b, atol=1e-5)
    if kind == BRADLEY_TERRY:
        decisive = winner <= 1
        fd_h = (pairwise_objective(a + h, b, *args)[1] - pairwise_objective(a - h, b, *args)[1]) / (2 * h)
        np.testing.assert_allclose(hess_a[decisive], fd_h[decisive], atol=1e-4)


def test_recovers_planted_prompt_dependent_skills():
    world = PlantedSkills.cyclic(n_models=5, n_topics=3)
    train, selection, test = (Battles.from_records(world.battles(n, seed=s)) for n, s in ((3000, 0), (300, 1), (1000, 2)))
    spec = GradientBoostingSpec(input_features=["prompt_features", "model_id"], ranking_loss_type="bradley_terry",
                                max_depth=4, min_model_occurrences=1)
    scorer = GradientBoostingScorer(spec).fit(train, selection, *quiet_fit_args(epochs=30, seed=0))
    accuracy, _ = pairwise_accuracy(*battle_scores(scorer, test), test.winner)
    assert accuracy >= best_prompt_agnostic_accuracy(test.records) + 0.05


def _invariance_fit(train: Battles, selection: Battles, kind: str) -> GradientBoostingScorer:
    spec = GradientBoostingSpec(input_features=["prompt_features", "model_id"], ranking_loss_type=kind, max_depth=3,
                                non_ranking_loss_coeff=0.1, min_model_occurrences=1)  # fmt: skip
    return GradientBoostingScorer(spec).fit(train, selection, *quiet_fit_args(epochs=15, seed=0))


@pytest.mark.parametrize("kind", ["margin_ranking", "bradley_terry"])
def test_invariant_to_battle_order_and_side_swaps(kind):
    world = PlantedSkills.cyclic(n_models=4, n_topics=3)
    records, held = world.battles(1200, seed=3, tie_rate=0.1), world.battles(200, seed=4, tie_rate=0.1)
    selection, probe = Battles.from_records(held), [r.prompt or "" for r in held[:50]]
    base = _invariance_fit(Battles.from_records(records), selection, kind)
    expected = base.score(probe, world.models)
    assert np.ptp(expected) > 0.1  # the model learned something, so equal scores are not trivially equal
    shuffled = [records[i] for i in np.random.default_rng(0).permutation(len(records))]
    flip = {"model_a": "model_b", "model_b": "model_a", "tie": "tie", "both_bad": "both_bad"}
    swapped = [replace(r, model_a=r.model_b, model_b=r.model_a, response_a=r.response_b, response_b=r.response_a,
                       winner=flip[r.winner]) for r in records]  # fmt: skip
    for variant in (shuffled, swapped):
        scorer = _invariance_fit(Battles.from_records(variant), selection, kind)
        assert scorer.best_round_ == base.best_round_
        np.testing.assert_allclose(scorer.score(probe, world.models), expected, atol=1e-5)


def test_block_importance_tells_prompt_dependent_skills_from_pure_bradley_terry():
    """The prompt side's share of split gain: large when the best model depends on the topic (cyclic skills), small
    when one strength per model explains every vote (one topic: pure Bradley-Terry)."""
    shares = {}
    for topics in (3, 1):
        world = PlantedSkills.cyclic(n_models=5, n_topics=topics)
        train, selection = (Battles.from_records(world.battles(n, seed=s)) for n, s in ((1200, 0), (300, 1)))
        spec = GradientBoostingSpec(input_features=["prompt_features", "model_id"], ranking_loss_type="bradley_terry",
                                    max_depth=4, min_model_occurrences=1)  # fmt: skip
        importance = GradientBoostingScorer(spec).fit(train, selection, *quiet_fit_args(epochs=20, seed=0)).importance_
        assert sum(importance["blocks"].values()) == pytest.approx(1.0)
        assert importance["sides"]["prompt"] == pytest.approx(importance["blocks"]["prompt_features"])
        shares[topics] = importance["sides"]["prompt"]
    assert shares[3] > 0.2 and shares[1] < 0.12 and shares[3] > 3 * shares[1]
