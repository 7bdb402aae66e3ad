"""The base-model residual's parts: alpha's fit against known answers, base scores, and the spec fields."""

import numpy as np
import pytest
from pydantic import ValidationError

from router_core.base_model import BaseScores, fit_alpha, residual_log_loss
from router_core.errors import DataError
from router_core.specs import DenseNetworkSpec, DnEmbeddingSpec

DENSE = {"hidden_dims": [8], "model_id_embedding_dim": 4, "optimizer": {"optimizer_type": "adam", "learning_rate": 0.01}}


def _votes(true_alpha: float, n: int = 40_000, seed: int = 0):
    rng = np.random.default_rng(seed)
    base, residual = rng.normal(0, 1, n), rng.normal(0, 1.5, n)
    a_won = rng.random(n) < 1 / (1 + np.exp(-(base + true_alpha * residual)))
    return base, residual, a_won


@pytest.mark.parametrize("true_alpha", [0.0, 0.3, 0.7, 1.0])
def test_fit_alpha_recovers_the_planted_weight(true_alpha):
    alpha = fit_alpha(*_votes(true_alpha), rule="min")
    assert abs(alpha - true_alpha) < 0.04, alpha
    gated = fit_alpha(*_votes(true_alpha))  # the one-standard-error gate: the minimiser, or 0 when it is noise
    assert gated == alpha or (gated == 0.0 and true_alpha == 0.0)


def test_fit_alpha_is_the_minimum_over_a_fine_grid_and_stays_in_bounds():
    base, residual, a_won = _votes(0.45, n=3000, seed=1)
    alpha = fit_alpha(base, residual, a_won, rule="min")
    grid = np.linspace(0, 1, 2001)
    best = grid[np.argmin([residual_log_loss(a, base, residual, a_won) for a in grid])]
    assert abs(alpha - best) < 1e-3
    assert fit_alpha(*_votes(2.5, n=5000), rule="min") == 1.0  # the truth lies above the bound
    base, _, a_won = _votes(0.0, n=5000, seed=2)
    assert fit_alpha(base, np.where(a_won, -5.0, 5.0), a_won) == 0.0  # a residual that always points the wrong way
    assert fit_alpha(np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool)) == 1.0


def test_residual_log_loss_known_value():
    # sigmoid(0) = 0.5 for every battle: log 2
    assert residual_log_loss(0.3, np.zeros(4), np.zeros(4), np.array([True, False, True, False])) == pytest.approx(np.log(2))


def test_base_scores_fall_back_to_the_mean_and_round_trip():
    base = BaseScores(("a", "b", "c"), np.array([1.0, 2.0, 6.0]), "inline bradley_terry_scoring")
    assert base.for_models(["c", "zz", "a"]).tolist() == [6.0, 3.0, 1.0]
    again = BaseScores.from_json(base.to_json())
    assert again.models == base.models and np.array_equal(again.scores, base.scores) and again.source == base.source
    with pytest.raises(DataError):
        BaseScores(("a",), np.array([np.nan]), "x")


def test_base_model_field_takes_a_reference_or_an_inline_prompt_agnostic_spec():
    inline = DenseNetworkSpec.model_validate(DENSE | {"base_model": {"model_type": "bradley_terry_scoring"}})
    assert inline.base_model is not None and inline.references() == {}
    ref = DnEmbeddingSpec.model_validate({"hidden_dims": [8], "optimizer": DENSE["optimizer"],
                                          "load_embedding_model_from": "dn_embedding/emb",
                                          "base_model": "bradley_terry_scoring/bt"})
    assert ref.references() == {"load_embedding_model_from": "dn_embedding/emb", "base_model": "bradley_terry_scoring/bt"}
    assert DenseNetworkSpec.model_validate(DENSE).base_model is None
    for bad in ({"model_type": "dense_network"}, "../etc/passwd", {"model_type": "bradley_terry_scoring", "x": 1}):
        with pytest.raises(ValidationError):
            DenseNetworkSpec.model_validate(DENSE | {"base_model": bad})


def test_standard_error_gate_keeps_the_base_on_weak_evidence():
    base, _, a_won = _votes(0.0, n=150, seed=3)
    noise = np.random.default_rng(4).normal(0, 1.5, 150)  # a residual unrelated to the outcomes
    assert fit_alpha(base, noise, a_won, rule="min") > 0.0  # the raw minimum follows the noise a little
    assert fit_alpha(base, noise, a_won) == 0.0
    # with a real effect the gate keeps the minimiser; the base's excess over it is above one standard error
    base, residual, a_won = _votes(0.5, n=2000, seed=5)
    chosen, best = fit_alpha(base, residual, a_won), fit_alpha(base, residual, a_won, rule="min")
    assert chosen == best
    signs = np.where(a_won, -1, 1)
    excess = np.logaddexp(0, signs * base) - np.logaddexp(0, signs * (base + best * residual))
    margin = excess.mean() / (excess.std(ddof=1) / np.sqrt(2000))  # the gain over the base, in standard errors
    assert margin > 1.0
    assert fit_alpha(base, residual, a_won, standard_errors=0.99 * margin) == best
    assert fit_alpha(base, residual, a_won, standard_errors=1.01 * margin) == 0.0  # a wider gate closes
    with pytest.raises(ValueError):
        fit_alpha(base, residual, a_won, rule="median")


def test_selection_halves_split_by_prompt_into_two_disjoint_halves_deterministically():
    from router_core.base_model import selection_halves
    from router_core.data.types import Battle, Battles

    records = [Battle(f"m{i % 3}", f"n{i % 4}", "model_a", id=str(i), prompt=f"prompt {i % 37}") for i in range(400)]
    selection = Battles.from_records(records)
    choose, fit = selection_halves(selection, seed=5)
    ids = [{r.id for r in half.records} for half in (choose, fit)]
    assert not ids[0] & ids[1] and ids[0] | ids[1] == {r.id for r in records}
    assert not {r.prompt for r in choose.records} & {r.prompt for r in fit.records}
    assert abs(len(choose) - len(fit)) <= 2 * 11  # whole prompts of 10-11 battles each
    again = selection_halves(Battles.from_records(records[::-1]), seed=5)
    assert [{r.id for r in half.records} for half in again] == ids
    single = Battles.from_records([Battle("a", "b", "model_a", prompt="only one prompt")] * 4)
    assert selection_halves(single, seed=0) == (single, single)  # nothing to halve: both are the whole
