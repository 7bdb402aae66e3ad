"""Prompt-aware scorers recover planted prompt-dependent strengths: within 2 points of the oracle's pairwise
accuracy, and clearly above the best any prompt-agnostic scorer (Bradley-Terry included) can reach."""

import numpy as np
import pytest

from router_core.data.types import Battles
from router_core.metrics import pairwise_accuracy
from router_core.registry import scorer_class
from router_core.scoring import battle_scores
from router_core.specs import MODEL_SPECS
from router_core.synthetic import best_prompt_agnostic_accuracy
from router_core.testing import quiet_fit_args
from tests.neural.conftest import TINY_EMBEDDING

# 20 epochs on 3,000 battles: ~5 s per model type on an idle 2-core machine, minutes on a busy one.
pytestmark = pytest.mark.slow

SPECS = {
    "dense_network": {"model_type": "dense_network", "hidden_dims": [64], "model_id_embedding_dim": 8,
                      "optimizer": {"optimizer_type": "adamw", "learning_rate": 0.003}},
    "dn_embedding": {"model_type": "dn_embedding", "hidden_dims": [64, 32], "input_proj_dim": 32,
                     "embedding_model_epochs": 3, "embedding_spec": TINY_EMBEDDING,
                     "optimizer": {"optimizer_type": "adamw", "learning_rate": 0.003}},
}


@pytest.mark.parametrize("model_type", sorted(SPECS))
def test_reaches_oracle_accuracy_on_planted_skills(model_type, planted):
    world, train, validation, test = planted
    spec = MODEL_SPECS[model_type].model_validate(SPECS[model_type])
    options = quiet_fit_args(epochs=20, batch_size=64, seed=0)
    scorer = scorer_class(model_type)(spec).fit(Battles.from_records(train), Battles.from_records(validation), *options)

    battles = Battles.from_records(test)
    score_a, score_b = battle_scores(scorer, battles)
    accuracy, n = pairwise_accuracy(score_a, score_b, battles.winner)
    oracle, _ = pairwise_accuracy(*world.oracle_scores(test), battles.winner)
    agnostic = best_prompt_agnostic_accuracy(test)
    assert n == 1000
    assert accuracy >= oracle - 0.02, f"{model_type}: {accuracy:.3f} vs oracle {oracle:.3f}"
    assert accuracy >= agnostic + 0.15, f"{model_type}: {accuracy:.3f} vs prompt-agnostic bound {agnostic:.3f}"
    oracle_a, oracle_b = world.oracle_scores(test)
    agreement = np.mean(np.sign(score_a - score_b) == np.sign(oracle_a - oracle_b))
    assert agreement >= 0.95  # it predicts like the oracle, not just as often right
