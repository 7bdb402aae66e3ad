"""gradient_boosting over a prompt-agnostic base: the base as every row's base margin, the round chosen on one half
of the selection battles and alpha fitted on the other."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from router_classic.gradient_boosting import GradientBoostingScorer
from router_core.data.types import Battles
from router_core.metrics import pairwise_accuracy
from router_core.pipeline import fit_on_split, prepare_split
from router_core.scoring import battle_scores
from router_core.specs import TrainingSpec, parse_training_spec
from router_core.synthetic import PlantedSkills, best_prompt_agnostic_accuracy
from router_core.testing import quiet_fit_args


def _training(seed: int) -> TrainingSpec:
    return parse_training_spec({
        "model": {"name": "gb", "spec": {"model_type": "gradient_boosting", "max_depth": 4, "min_model_occurrences": 1,
                                         "input_features": ["prompt_features", "model_id"],
                                         "ranking_loss_type": "bradley_terry",
                                         "base_model": {"model_type": "bradley_terry_scoring"}}},
        "data": {"path": "unused", "validation_split": 0.0, "seed": seed}, "epochs": 30, "batch_size": 64,
    })  # fmt: skip


def _fit(world: PlantedSkills, seed: int) -> tuple[GradientBoostingScorer, Battles]:
    training = _training(seed)
    spec = training.model.spec
    split = prepare_split(world.battles(3000, seed=seed), training, spec)
    scorer = fit_on_split(GradientBoostingScorer(spec), spec, split, *quiet_fit_args(epochs=30, seed=seed))
    assert isinstance(scorer, GradientBoostingScorer)
    return scorer, Battles.from_records(world.battles(1000, seed=seed + 50))


def test_planted_prompt_skills_are_learned_over_the_base(tmp_path: Path):
    scorer, test = _fit(PlantedSkills.cyclic(n_models=5, n_topics=3), seed=0)
    assert scorer.report()["base_model"] == "inline bradley_terry_scoring" and scorer.alpha_ > 0.7
    accuracy, _ = pairwise_accuracy(*battle_scores(scorer, test), test.winner)
    assert accuracy >= best_prompt_agnostic_accuracy(test.records) + 0.05
    scorer.save(tmp_path)
    loaded = GradientBoostingScorer.load(tmp_path, scorer.spec)
    prompts, models = ["python loop bug", "a poem with rhyme"], list(scorer.known_models)
    np.testing.assert_array_equal(loaded.score(prompts, models), scorer.score(prompts, models))
    loaded.alpha_ = 0.0  # the base alone: one score per model, whatever the prompt
    np.testing.assert_allclose(loaded.score(prompts, models), np.broadcast_to(loaded.base_.for_models(models), (2, 5)))


@pytest.mark.slow
def test_no_prompt_signal_keeps_alpha_low():
    scorer, test = _fit(PlantedSkills.cyclic(n_models=5, n_topics=1, spread=2.0), seed=1)
    assert scorer.alpha_ < 0.5, scorer.alpha_


def test_the_alpha_half_of_the_selection_battles_never_changes_the_trees():
    from router_core.base_model import selection_halves

    training = _training(2)
    spec = training.model.spec
    split = prepare_split(PlantedSkills.cyclic(n_models=5, n_topics=3).battles(1500, seed=2), training, spec)
    run, hooks = quiet_fit_args(epochs=15, seed=2)
    _, fit = selection_halves(split.selection, run.seed)
    flipped = {r.id for r in fit.records}
    swap = {"model_a": "model_b", "model_b": "model_a", "tie": "tie", "both_bad": "both_bad"}
    other = Battles.from_records(dataclasses.replace(r, winner=swap[r.winner]) if r.id in flipped else r
                                 for r in split.selection.records)  # fmt: skip
    first = fit_on_split(GradientBoostingScorer(spec), spec, split, run, hooks)
    second = fit_on_split(GradientBoostingScorer(spec), spec, dataclasses.replace(split, selection=other), run, hooks)
    assert isinstance(first, GradientBoostingScorer) and isinstance(second, GradientBoostingScorer)
    assert first.best_round_ == second.best_round_
    assert first.booster_.save_raw("json") == second.booster_.save_raw("json")
    assert first.alpha_ > 0.5 and second.alpha_ < first.alpha_  # the flipped half says the trees hurt
