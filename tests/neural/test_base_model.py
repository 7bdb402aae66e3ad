"""Prompt-aware scorers over a prompt-agnostic base: score = base + alpha * residual, alpha fitted on the selection
battles; validation battles are only measured; planted prompt skills give alpha near 1, no prompt signal near 0."""

import dataclasses
import json

import numpy as np
import pytest

from router_cli import main
from router_core.data.types import Battle, Battles
from router_core.evaluation import LogisticLink, evaluate
from router_core.metrics import pairwise_accuracy
from router_core.pipeline import fit_on_split, load_scorer, prepare_split, train_from_spec
from router_core.scoring import battle_scores
from router_core.specs import parse_training_spec
from router_core.store import ModelStore
from router_core.synthetic import PlantedSkills
from router_core.testing import quiet_fit_args
from tests.neural.test_dense_network import write_battles

QUIET = quiet_fit_args()[1]
DENSE = {"model_type": "dense_network", "hidden_dims": [32], "model_id_embedding_dim": 4, "min_model_comparisons": 1,
         "optimizer": {"optimizer_type": "adamw", "learning_rate": 0.003}}  # fmt: skip
INLINE_BT = {"model_type": "bradley_terry_scoring"}


def _spec(path: str, name: str, model: dict, epochs: int = 3, **data) -> dict:
    return {"model": {"name": name, "spec": model}, "epochs": epochs, "batch_size": 64,
            "data": {"path": path, "format": "canonical", "validation_split": 0.2, "seed": 0} | data}  # fmt: skip


def _train(spec: dict):
    return train_from_spec(parse_training_spec(spec), ModelStore(), QUIET)


def test_inline_base_is_fitted_saved_and_reported(tmp_path, planted, capsys):
    path = write_battles(tmp_path / "b.jsonl", planted[1][:600])
    outcome = _train(_spec(path, "res", DENSE | {"base_model": INLINE_BT}))
    fit = outcome.saved.meta["fit"]
    assert fit["base_model"] == "inline bradley_terry_scoring" and 0.0 <= fit["alpha"] <= 1.0
    assert outcome.metrics["n_selection_battles"] == len(outcome.split.selection) > 0
    scorer = load_scorer(outcome.saved)
    assert scorer.alpha_ == fit["alpha"]
    assert main(["list", "--json"]) == 0
    listed = {row["model"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed["dense_network/res"]["alpha"] == fit["alpha"]
    assert listed["dense_network/res"]["base_model"] == "inline bradley_terry_scoring"
    prompts, models = ["python loop bug", "a sonnet about rhyme"], list(scorer.known_models)
    scores = scorer.score(prompts, models)
    # with alpha = 0 the model is exactly its base (the same score for every prompt); in between it is linear
    scorer.alpha_ = 0.0
    base_only = scorer.score(prompts, models)
    np.testing.assert_allclose(base_only, np.broadcast_to(scorer.base_.for_models(models), base_only.shape))
    scorer.alpha_ = 1.0
    full = scorer.score(prompts, models)
    assert not np.allclose(full, base_only)  # the trained residual is not zero
    np.testing.assert_allclose(scores, base_only + fit["alpha"] * (full - base_only), atol=1e-9)


def test_untrained_residual_starts_at_zero(planted):
    from router_core.specs import DenseNetworkSpec
    from router_neural.dense_network import DenseNetworkScorer

    spec = DenseNetworkSpec.model_validate(DENSE | {"base_model": INLINE_BT, "model_bias": False})
    network = DenseNetworkScorer(spec)._network_from_config({"input_dim": 10, "n_models": 3})
    import torch

    assert torch.equal(network(torch.randn(4, 10), torch.tensor([0, 1, 2, 0])), torch.zeros(4))


def test_saved_base_reference_and_prompt_less_battles_for_an_inline_base(tmp_path, planted):
    prompted = planted[1][:400]
    extra = [Battle(model_a="model-0", model_b="model-9", winner="model_a", id=f"v{i}") for i in range(30)]
    path = write_battles(tmp_path / "b.jsonl", prompted + extra)
    bt = _train(_spec(path, "bt", INLINE_BT | {"min_model_occurrences": 1}, epochs=1))
    saved_base = _train(_spec(path, "over_saved", DENSE | {"base_model": bt.saved.ref}))
    assert saved_base.saved.meta["fit"]["base_model"] == bt.saved.ref
    assert "model-9" in load_scorer(saved_base.saved).base_.models  # the saved base knows it
    inline = _train(_spec(path, "over_inline", DENSE | {"base_model": INLINE_BT}))
    base = load_scorer(inline.saved).base_
    assert "model-9" in base.models  # seen only in prompt-less battles, which the inline base was fitted on
    assert "model-9" not in inline.split.train.models  # the residual network reads prompted battles only
    with pytest.raises(Exception, match="prompt-agnostic"):
        _train(_spec(path, "over_neural", DENSE | {"base_model": inline.saved.ref}))


def test_validation_battles_never_change_the_fitted_model(tmp_path, planted):
    battles = planted[1][:600]
    spec = _spec("x", "a", DENSE | {"base_model": INLINE_BT})
    split = prepare_split(battles, parse_training_spec(spec), parse_training_spec(spec).model.spec)
    held = {r.id for r in split.validation.records}
    flip = {"model_a": "model_b", "model_b": "model_a", "tie": "model_a", "both_bad": "model_b"}
    other = [dataclasses.replace(b, winner=flip[b.winner]) if b.id in held else b for b in battles]
    first = _train(_spec(write_battles(tmp_path / "1.jsonl", battles), "first", DENSE | {"base_model": INLINE_BT}))
    second = _train(_spec(write_battles(tmp_path / "2.jsonl", other), "second", DENSE | {"base_model": INLINE_BT}))
    assert first.saved.meta["data"]["validation_fingerprint"] != second.saved.meta["data"]["validation_fingerprint"]
    assert first.saved.meta["data"]["selection_fingerprint"] == second.saved.meta["data"]["selection_fingerprint"]
    prompts = [b.prompt for b in battles[:20]]
    one, two = load_scorer(first.saved), load_scorer(second.saved)
    np.testing.assert_array_equal(one.score(prompts, one.known_models), two.score(prompts, two.known_models))
    assert one.alpha_ == two.alpha_


def test_the_epoch_is_chosen_on_one_half_of_the_selection_battles_and_alpha_fitted_on_the_other(planted):
    """Flipping the votes of the alpha half changes alpha at most, never the trained residual; flipping the other
    half changes which epoch is kept."""
    from router_core.base_model import selection_halves
    from router_neural.dense_network import DenseNetworkScorer

    training = parse_training_spec(_spec("x", "h", DENSE | {"base_model": INLINE_BT}, epochs=6))
    split = prepare_split(planted[1][:800], training, training.model.spec)
    run, hooks = quiet_fit_args(epochs=6, batch_size=64, seed=0)
    choose, fit = selection_halves(split.selection, run.seed)
    assert len(choose) > 0 and len(fit) > 0

    def residual_after_flipping(half: Battles) -> tuple[np.ndarray, int]:
        flipped = {r.id for r in half.records}
        swap = {"model_a": "model_b", "model_b": "model_a", "tie": "tie", "both_bad": "both_bad"}
        selection = Battles.from_records(dataclasses.replace(r, winner=swap[r.winner]) if r.id in flipped else r
                                         for r in split.selection.records)  # fmt: skip
        scorer = fit_on_split(DenseNetworkScorer(training.model.spec), training.model.spec,
                              dataclasses.replace(split, selection=selection), run, hooks)  # fmt: skip
        scorer.alpha_ = 1.0
        prompts = [b.prompt for b in planted[1][:30]]
        return scorer.score(prompts, list(scorer.known_models)), scorer.loop_.best_epoch

    reference = residual_after_flipping(Battles.from_records([]))
    alpha_half = residual_after_flipping(fit)
    np.testing.assert_array_equal(alpha_half[0], reference[0])
    assert alpha_half[1] == reference[1]
    epoch_half = residual_after_flipping(choose)
    assert epoch_half[1] != reference[1] or not np.array_equal(epoch_half[0], reference[0])


def test_at_alpha_zero_the_model_is_its_bradley_terry_base_probabilities_included(planted):
    """The inline base is Bradley-Terry fitted on the same training battles, on its own log-odds scale, and the
    model's link is not refitted: at alpha 0 accuracy and log-loss are Bradley-Terry's, to rounding."""
    from router_classic.bradley_terry_scoring import BradleyTerryScorer
    from router_core.pipeline import calibration_link, scorer_split
    from router_core.specs import BradleyTerryScoringSpec
    from router_neural.dense_network import DenseNetworkScorer

    training = parse_training_spec(_spec("x", "z", DENSE | {"base_model": INLINE_BT}, epochs=1))
    split = prepare_split(planted[1][:500], training, training.model.spec)
    run, hooks = quiet_fit_args(epochs=1, batch_size=64, seed=0)
    scorer = fit_on_split(DenseNetworkScorer(training.model.spec), training.model.spec, split, run, hooks)
    bt = BradleyTerryScorer(BradleyTerryScoringSpec()).fit(split.train, split.selection, run, hooks)
    models = list(bt.known_models)
    np.testing.assert_allclose(scorer.base_.for_models(models), bt.score([""], models)[0], atol=1e-12)
    scorer.alpha_ = 0.0
    link = calibration_link(scorer, scorer_split(training.model.spec, split))
    assert link is not None and link.coef == 1.0
    ours = evaluate(scorer, split.validation, link, bootstrap_rounds=0, progress=False)
    theirs = evaluate(bt, split.validation, None, bootstrap_rounds=0, progress=False)
    assert ours["pairwise_accuracy"] == theirs["pairwise_accuracy"]
    assert ours["log_loss"] == pytest.approx(theirs["log_loss"], abs=1e-9)


def _fit_and_measure(world: PlantedSkills, n_train: int, seed: int):
    """An inline-BT-based dense_network and plain Bradley-Terry on the same split, measured on fresh battles."""
    from router_classic.bradley_terry_scoring import BradleyTerryScorer
    from router_core.specs import BradleyTerryScoringSpec
    from router_neural.dense_network import DenseNetworkScorer

    train, test = world.battles(n_train, seed=seed), Battles.from_records(world.battles(1500, seed=seed + 100))
    spec = _spec("x", "p", DENSE | {"base_model": INLINE_BT, "hidden_dims": [64], "model_id_embedding_dim": 8},
                 epochs=20, validation_split=0.0)  # fmt: skip
    training = parse_training_spec(spec)
    split = prepare_split(train, training, training.model.spec)
    run, hooks = quiet_fit_args(epochs=20, batch_size=64, seed=seed)
    scorer = fit_on_split(DenseNetworkScorer(training.model.spec), training.model.spec, split, run, hooks)
    bt = BradleyTerryScorer(BradleyTerryScoringSpec(min_model_occurrences=1)).fit(split.train, split.selection, run, hooks)
    return scorer, bt, test


@pytest.mark.slow
def test_planted_prompt_skills_give_alpha_near_one_and_oracle_accuracy():
    world = PlantedSkills.cyclic(n_models=5, n_topics=4)
    scorer, _, test = _fit_and_measure(world, 3000, seed=0)
    accuracy, _ = pairwise_accuracy(*battle_scores(scorer, test), test.winner)
    oracle, _ = pairwise_accuracy(*world.oracle_scores(list(test.records)), test.winner)
    assert scorer.alpha_ > 0.8
    assert accuracy >= oracle - 0.02, (accuracy, oracle)


@pytest.mark.slow
def test_no_prompt_signal_gives_alpha_near_zero_and_bradley_terry_accuracy():
    world = PlantedSkills.cyclic(n_models=5, n_topics=1, spread=2.0)  # one topic: skills do not depend on the prompt
    scorer, bt, test = _fit_and_measure(world, 3000, seed=3)
    ours = evaluate(scorer, test, LogisticLink(1.0, 0, 0.0), bootstrap_rounds=0, progress=False)
    theirs = evaluate(bt, test, None, bootstrap_rounds=0, progress=False)
    assert scorer.alpha_ < 0.3
    assert abs(ours["pairwise_accuracy"] - theirs["pairwise_accuracy"]) < 0.015
    assert ours["log_loss"] < theirs["log_loss"] + 0.005
