"""One contract over every model type: fit -> score -> save -> load -> score, shapes, finiteness, scores
independent of the batch size, idempotent refit.

Adding a model type = adding one `Case` row.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from router_core.data.types import Battle, Battles
from router_core.registry import scorer_class
from router_core.specs import MODEL_SPECS
from router_core.testing import quiet_fit_args


@dataclass(frozen=True)
class Case:
    """A model type with a small spec and the fit options it needs."""

    id: str
    spec: dict[str, Any]
    epochs: int = 2
    marks: tuple[Any, ...] = field(default_factory=tuple)


CASES = [
    Case("elo_scoring", {"model_type": "elo_scoring", "min_model_occurrences": 1}),
    Case("least_squares_scoring", {"model_type": "least_squares_scoring", "min_model_occurrences": 1}, epochs=0),
    Case("greedy_ranking", {"model_type": "greedy_ranking", "min_model_occurrences": 1}, epochs=0),
    Case("mcmf_scoring", {"model_type": "mcmf_scoring", "min_model_occurrences": 1}, epochs=0),
    Case("bradley_terry_scoring", {"model_type": "bradley_terry_scoring", "min_model_occurrences": 1,
                                   "confidence_intervals": "both", "bootstrap_rounds": 10}, epochs=0),
    Case("dense_network", {"model_type": "dense_network", "hidden_dims": [16], "model_id_embedding_dim": 4,
                           "optimizer": {"optimizer_type": "adamw", "learning_rate": 0.01}}),
    Case("dn_embedding", {"model_type": "dn_embedding", "hidden_dims": [16, 8], "input_proj_dim": 8,
                          "use_skip_connections": True, "embedding_model_epochs": 1,
                          "optimizer": {"optimizer_type": "muon", "lr_decay_gamma": 0.9},
                          "embedding_spec": {"embedding_type": "attention", "h_emb": 16, "h_scalar": 8, "h_pair": 16,
                                             "d_out": 8, "num_attention_heads": 2, "pairs_per_model": 8,
                                             "models_per_batch": 4, "embeddings_per_model": 2,
                                             "optimizer": {"optimizer_type": "adamw"}}}),
    Case("gradient_boosting", {"model_type": "gradient_boosting", "input_features": ["prompt_features", "model_id"],
                               "max_depth": 3, "min_model_occurrences": 1}, epochs=3),
    Case("transformer_embedding", {"model_type": "transformer_embedding", "transformer_model_name": "all-MiniLM-L6-v2",
                                   "finetuning_spec": {"method": "bitfit"}, "hidden_dims": [8], "proj_dim": 4,
                                   "max_length": 16, "embedding_model_epochs": 1, "min_model_occurrences": 1,
                                   "optimizer": {"optimizer_type": "adamw"},
                                   "embedding_spec": {"embedding_type": "attention", "h_emb": 16, "h_scalar": 8,
                                                      "h_pair": 16, "d_out": 8, "num_attention_heads": 2,
                                                      "pairs_per_model": 8, "models_per_batch": 4,
                                                      "embeddings_per_model": 2, "optimizer": {"optimizer_type": "adamw"}}},
         epochs=1, marks=(pytest.mark.slow,)),
    Case("simple_scoring", {"model_type": "simple_scoring", "min_model_occurrences": 1,
                            "optimizer": {"optimizer_type": "adam", "learning_rate": 0.05}}),
]

TOPICS = ("python code bug", "poem about the sea", "integral of x squared")


def _battles(n: int, seed: int) -> Battles:
    rng = np.random.default_rng(seed)
    models = [f"model-{i}" for i in range(5)]
    records = []
    for i in range(n):
        a, b = rng.choice(5, 2, replace=False)
        winner = ("model_a", "model_b", "tie", "both_bad")[rng.choice(4, p=[0.4, 0.4, 0.1, 0.1])]
        topic = TOPICS[i % len(TOPICS)]
        records.append(Battle(model_a=models[a], model_b=models[b], winner=winner, id=str(i),
                              prompt=f"{topic} #{i % 17}", response_a=f"answer {a} about {topic}",
                              response_b=f"answer {b} about {topic}"))
    return Battles.from_records(records)


def _fit(case: Case) -> Any:
    spec = MODEL_SPECS[case.id].model_validate(case.spec)
    options = quiet_fit_args(epochs=case.epochs, batch_size=16, seed=0)
    return scorer_class(case.id)(spec).fit(_battles(300, 0), _battles(60, 1), *options), options


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_contract(case: Case, tmp_path: Path):
    scorer, options = _fit(case)
    prompts, models = ["python code bug #1", "a new prompt"], ["model-0", "model-3", "unknown-model"]
    scores = scorer.score(prompts, models, 8)
    assert scores.shape == (2, 3) and scores.dtype == np.float64
    assert np.isfinite(scores[:, :2]).all() and np.isnan(scores[:, 2]).all()
    assert set(scorer.known_models) == {f"model-{i}" for i in range(5)}
    many = [f"{topic} #{i}" for i in range(3) for topic in TOPICS] + ["a new prompt"]  # 10 prompts
    by_one, all_at_once = scorer.score(many, models, 1), scorer.score(many, models, 64)
    np.testing.assert_allclose(by_one, all_at_once, rtol=1e-5, atol=1e-6)  # the batch size never changes a score
    np.testing.assert_allclose(scorer.score(many, models, 3), all_at_once, rtol=1e-5, atol=1e-6)  # ragged batches

    scorer.save(tmp_path)
    loaded = type(scorer).load(tmp_path, scorer.spec)
    np.testing.assert_array_equal(loaded.score(prompts, models, 8), scores)

    scorer.fit(_battles(200, 2), _battles(40, 3), *options)  # fitting twice == fitting once on the second data
    fresh = scorer_class(case.id)(scorer.spec).fit(_battles(200, 2), _battles(40, 3), *options)
    np.testing.assert_allclose(scorer.score(prompts, models, 8), fresh.score(prompts, models, 8), rtol=1e-6, atol=1e-8)


def test_every_model_type_has_a_case():
    # Length models (task "length") are not scorers; their contract is in tests/neural/test_length_prediction.py.
    assert {c.id for c in CASES} == {name for name, cls in MODEL_SPECS.items() if cls.task == "score"}
