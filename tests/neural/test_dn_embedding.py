"""dn_embedding: the LLM-embedding stage, reusing it from a saved model, spec checks, resume with new models."""

import numpy as np
import pytest
from pydantic import ValidationError

from router_core.data.types import Battles
from router_core.errors import UserError
from router_core.pipeline import load_scorer, train_from_spec
from router_core.specs import DnEmbeddingSpec, parse_training_spec
from router_core.store import ModelStore
from router_core.testing import quiet_fit_args
from router_neural.dn_embedding import DnEmbeddingScorer
from router_neural.llm_embedding import LlmEmbeddingStage, nearest_model_accuracy
from tests.neural.conftest import TINY_EMBEDDING
from tests.neural.test_dense_network import write_battles

QUIET = quiet_fit_args(epochs=2, batch_size=64, seed=0)
NETWORK = {"hidden_dims": [16], "input_proj_dim": 8, "optimizer": {"optimizer_type": "adamw", "learning_rate": 0.003}}


def spec_document(path: str, name: str, **model) -> dict:
    return {"model": {"name": name, "spec": {"model_type": "dn_embedding", **NETWORK, "min_model_comparisons": 1, **model}},
            "data": {"path": path, "format": "canonical", "validation_split": 0.2, "seed": 0},
            "epochs": 2, "batch_size": 64}


def test_needs_exactly_one_embedding_source():
    with pytest.raises(ValidationError, match="exactly one of embedding_spec and load_embedding_model_from"):
        DnEmbeddingSpec(**NETWORK)
    with pytest.raises(ValidationError, match="exactly one"):
        DnEmbeddingSpec(**NETWORK, embedding_spec=TINY_EMBEDDING, load_embedding_model_from="dn_embedding/x")
    with pytest.raises(ValidationError, match="TYPE/NAME"):
        DnEmbeddingSpec(**NETWORK, load_embedding_model_from="dn_embedding/../x")
    with pytest.raises(ValidationError, match="divisible"):
        DnEmbeddingSpec(**NETWORK, embedding_spec=TINY_EMBEDDING | {"h_pair": 30, "num_attention_heads": 4})


def test_stage_separates_models_by_their_answers(planted):
    _, train, validation, _ = planted
    stage = LlmEmbeddingStage(DnEmbeddingSpec(**NETWORK, embedding_spec=TINY_EMBEDDING).embedding_spec)
    models = [f"model-{i}" for i in range(5)]
    stage.fit(Battles.from_records(train[:800]), Battles.from_records(validation), models, 3, 0, QUIET[1])
    assert stage.vectors_.shape == (5, 16) and np.isfinite(stage.vectors_).all()
    assert stage.history_[-1]["accuracy"] >= 0.8  # set embeddings land nearest to their own model's vector
    distances = np.linalg.norm(stage.vectors_[:, None] - stage.vectors_[None], axis=2)
    assert distances[~np.eye(5, dtype=bool)].min() > 0.1


def test_nearest_model_accuracy_is_by_direction_and_skips_models_without_a_vector():
    vectors = np.array([[10.0, 0.0], [0.0, 0.1], [np.nan, np.nan]])
    # Each query points along its own model's vector; by Euclidean distance both would land on the short model 1.
    queries = np.array([[1.0, 0.05], [0.05, 1.0], [3.0, -0.1]])
    assert nearest_model_accuracy(queries, np.array([0, 1, 0]), vectors) == 1.0
    assert nearest_model_accuracy(queries, np.array([1, 1, 1]), vectors) == pytest.approx(1 / 3)
    # Scaling a query or a model vector changes nothing; the NaN model is never the nearest.
    assert nearest_model_accuracy(queries * 7, np.array([0, 1, 0]), vectors * [[0.01], [50.0], [1.0]]) == 1.0
    assert nearest_model_accuracy(np.array([[-1.0, -1.0]]), np.array([2]), vectors) == 0.0


def test_stage_without_responses_is_a_clear_error(planted):
    from dataclasses import replace

    bare = [replace(b, response_a=None, response_b=None) for b in planted[1][:100]]
    scorer = DnEmbeddingScorer(DnEmbeddingSpec(**NETWORK, embedding_spec=TINY_EMBEDDING))
    with pytest.raises(UserError, match="needs response texts"):
        scorer.fit(Battles.from_records(bare), Battles.from_records([]), *QUIET)


def test_load_embedding_model_from_copies_the_saved_vectors(tmp_path, planted):
    path = write_battles(tmp_path / "b.jsonl", planted[1][:500])
    store = ModelStore()
    source = train_from_spec(parse_training_spec(spec_document(path, "source", embedding_spec=TINY_EMBEDDING,
                                                               embedding_model_epochs=1)), store, QUIET[1])  # fmt: skip
    reuse = spec_document(path, "reuse", load_embedding_model_from="dn_embedding/source")
    reused = load_scorer(train_from_spec(parse_training_spec(reuse), store, QUIET[1]).saved)
    original = load_scorer(source.saved)
    np.testing.assert_array_equal(reused.stage_.vectors_, original.stage_.vectors_)
    # pinned: retraining the source later does not change the model that copied its embedding
    train_from_spec(parse_training_spec(spec_document(path, "source", embedding_spec=TINY_EMBEDDING | {"d_out": 8},
                                                      embedding_model_epochs=1)), store, QUIET[1])  # fmt: skip
    assert load_scorer(ModelStore().resolve("dn_embedding/reuse")).stage_.vectors_.shape == (5, 16)


def test_load_embedding_model_from_errors(tmp_path, planted):
    path = write_battles(tmp_path / "b.jsonl", planted[1][:200])
    with pytest.raises(UserError, match="no saved model 'dn_embedding/missing'"):
        train_from_spec(parse_training_spec(spec_document(path, "x", load_embedding_model_from="dn_embedding/missing")),
                        ModelStore(), QUIET[1])  # fmt: skip
    simple = {"model": {"name": "plain", "spec": {"model_type": "simple_scoring", "min_model_occurrences": 1,
                                                  "optimizer": {"optimizer_type": "adam"}}},
              "data": {"path": path, "format": "canonical"}, "epochs": 1, "batch_size": 64}
    train_from_spec(parse_training_spec(simple), ModelStore(), QUIET[1])
    with pytest.raises(UserError, match="has no LLM embedding"):
        train_from_spec(parse_training_spec(spec_document(path, "x", load_embedding_model_from="simple_scoring/plain")),
                        ModelStore(), QUIET[1])  # fmt: skip


def test_resume_with_new_models_pools_their_answers(planted, tmp_path):
    _, train, validation, _ = planted
    first = [b for b in train[:600] if "model-4" not in (b.model_a, b.model_b)]
    scorer = DnEmbeddingScorer(DnEmbeddingSpec(**NETWORK, embedding_spec=TINY_EMBEDDING, embedding_model_epochs=1))
    scorer.fit(Battles.from_records(first), Battles.from_records(validation), *QUIET)
    assert "model-4" not in scorer.known_models
    scorer.save(tmp_path)
    resumed = DnEmbeddingScorer.load(tmp_path, scorer.spec)
    before = resumed.stage_.vectors_.copy()
    resumed.fit(Battles.from_records(train[:600]), Battles.from_records(validation),
                *quiet_fit_args(epochs=1, batch_size=64, seed=0, resume=True))  # fmt: skip
    assert resumed.known_models[-1] == "model-4" and resumed.loop_.epochs_completed == 3
    np.testing.assert_array_equal(resumed.stage_.vectors_[:4], before)  # old models keep their vectors
    assert np.isfinite(resumed.score(["Explain the recipe"], ["model-4"])).all()
