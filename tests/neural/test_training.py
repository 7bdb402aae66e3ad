"""The shared epoch loop: seeding, best-epoch restore, resume, checkpoints, printing, balanced sampling."""

import numpy as np
import pytest
import torch

from router_core.errors import DataError
from router_core.sampling import sampling_probabilities
from router_core.scorer import RunConfig, TrainHooks
from router_core.specs import SimpleScoringSpec
from router_core.testing import quiet_fit_args
from router_neural.simple_scoring import ModelScores
from router_neural.training import LoopState, PairData, evaluate, train_pairs

SPEC = SimpleScoringSpec(optimizer={"optimizer_type": "adam", "learning_rate": 0.05}, non_ranking_loss_coeff=0.0)


def pairs(n: int, seed: int, n_models: int = 4) -> PairData:
    """Model i beats model j with probability sigmoid(i - j)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_models, n)
    b = (a + rng.integers(1, n_models, n)) % n_models
    winner = np.where(rng.random(n) < 1 / (1 + np.exp(b - a)), 0, 1)
    winner[rng.random(n) < 0.1] = 2
    return PairData(np.zeros(n, dtype=np.int64), a.astype(np.int64), b.astype(np.int64), winner.astype(np.int64))


def options(epochs: int = 4, **kwargs) -> tuple[RunConfig, TrainHooks]:
    return quiet_fit_args(epochs=epochs, batch_size=32, seed=kwargs.pop("seed", 0), **kwargs)


def run(epochs: int = 4, previous: LoopState | None = None, module: ModelScores | None = None, **kwargs):
    torch.manual_seed(0)
    module = module or ModelScores(4)
    state = train_pairs(module, module, pairs(400, 0), pairs(100, 1), kwargs.pop("spec", SPEC), *options(epochs, **kwargs),
                        n_models=4, previous=previous)
    return module, state


def test_seeded_runs_are_identical_and_seeds_matter():
    first, _ = run()
    second, _ = run()
    other, _ = run(seed=1)
    assert torch.equal(first.scores, second.scores)
    assert not torch.equal(first.scores, other.scores)


def test_learns_the_planted_order():
    module, state = run(epochs=10)
    assert torch.argsort(module.scores).tolist() == [0, 1, 2, 3]
    assert state.epochs_completed == 10 and len(state.history) == 10


def test_best_epoch_is_restored():
    spec = SPEC.model_copy(update={"optimizer": SPEC.optimizer.model_copy(update={"learning_rate": 3.0})})
    module, state = run(epochs=8, spec=spec)  # a huge step size makes validation accuracy jump around
    accuracies = [h["selection_accuracy"] for h in state.history]
    best = state.history[state.best_epoch - 1]
    assert best["selection_accuracy"] == max(accuracies)
    assert evaluate(module, module, pairs(100, 1), spec, torch.device("cpu"))["accuracy"] == best["selection_accuracy"]
    assert [h["epoch"] for h in state.history if h.get("best")][-1] == state.best_epoch


def test_resume_continues_epochs_optimizer_and_never_gets_worse():
    module, state = run(epochs=3)
    before = evaluate(module, module, pairs(100, 1), SPEC, torch.device("cpu"))["accuracy"]
    steps_before = float(state.optimizer["state"][0]["step"])
    resumed, again = run(epochs=2, previous=state, module=module)
    assert again.epochs_completed == 5 and [h["epoch"] for h in again.history] == [1, 2, 3, 4, 5]
    assert float(again.optimizer["state"][0]["step"]) > steps_before  # Adam's step count carried on
    assert evaluate(resumed, resumed, pairs(100, 1), SPEC, torch.device("cpu"))["accuracy"] >= before


def test_checkpoints_and_print_every():
    lines: list[str] = []
    calls: list[int] = []
    module = ModelScores(4)
    train_pairs(module, module, pairs(200, 0), pairs(50, 1), SPEC, *options(5, log=lines.append, save_every=2, print_every=2),
                n_models=4, on_checkpoint=calls.append)
    assert calls == [2, 4]
    assert [line.split(":")[0] for line in lines] == ["epoch 2", "epoch 4", "epoch 5"]  # the last epoch always prints


def test_without_validation_train_accuracy_decides():
    module = ModelScores(4)
    empty = PairData(*(np.zeros(0, dtype=np.int64),) * 4)
    state = train_pairs(module, module, pairs(200, 0), empty, SPEC, *options(3), n_models=4)
    assert state.best_epoch is not None and np.isnan(state.history[0]["selection_accuracy"])


def test_ties_are_dropped_when_their_coefficient_is_zero():
    data = pairs(200, 0)
    ties_only = data.select(data.winner == 2)
    module = ModelScores(4)
    with pytest.raises(DataError, match="no training battles"):
        train_pairs(module, module, ties_only, ties_only, SPEC, *options(1), n_models=4)
    with_ties = SPEC.model_copy(update={"non_ranking_loss_coeff": 1.0})
    train_pairs(module, module, ties_only, ties_only, with_ties, *options(5), n_models=4)
    assert (module.scores > 0).all()  # ties push both sides above +eps


def test_balanced_sampling_favours_rare_models():
    a, b = np.array([0, 0, 0, 1]), np.array([1, 1, 1, 2])  # model 2 appears once, 0 three times, 1 four times
    probs = sampling_probabilities(a, b, 3)
    assert probs.sum() == pytest.approx(1.0)
    weights = 1 / np.array([3, 3, 3, 4]) + 1 / np.array([4, 4, 4, 1])  # 1/count(A) + 1/count(B)
    np.testing.assert_allclose(probs, weights / weights.sum())
    assert probs[3] > probs[0]