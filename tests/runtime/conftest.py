"""Tiny trained models for the runtime tests: trained once per session into a session store, exported on demand."""

import json
from pathlib import Path

import pytest

from router_core.pipeline import train_from_spec
from router_core.specs import parse_training_spec
from router_core.store import ModelStore
from router_core.synthetic import PlantedSkills
from tests.neural.conftest import TINY_EMBEDDING

OPTIMIZER = {"optimizer_type": "adamw", "learning_rate": 0.003}
SPECS = {
    "dense_network": {"model_type": "dense_network", "hidden_dims": [32, 16], "model_id_embedding_dim": 4,
                      "min_model_occurrences": 1, "optimizer": OPTIMIZER},
    "dense_network_nofeat": {"model_type": "dense_network", "hidden_dims": [16], "model_id_embedding_dim": 4,
                             "use_prompt_features": False, "model_bias": False, "min_model_occurrences": 1,
                             "optimizer": OPTIMIZER},
    "dn_embedding": {"model_type": "dn_embedding", "hidden_dims": [24, 24], "input_proj_dim": 8,
                     "use_skip_connections": True, "embedding_spec": TINY_EMBEDDING, "embedding_model_epochs": 1,
                     "min_model_occurrences": 1, "optimizer": OPTIMIZER,
                     "base_model": {"model_type": "bradley_terry_scoring"}},  # exports base + alpha * head
    "elo_scoring": {"model_type": "elo_scoring", "min_model_occurrences": 1},
    "gradient_boosting": {"model_type": "gradient_boosting", "max_depth": 3, "min_model_occurrences": 1,
                          "input_features": ["prompt_features", "prompt_embedding", "model_id"]},
    "gradient_boosting_llm": {"model_type": "gradient_boosting", "max_depth": 3, "min_model_occurrences": 1,
                              "input_features": ["prompt_features", "model_embedding"], "embedding_spec": TINY_EMBEDDING,
                              "embedding_model_epochs": 1,
                              "base_model": {"model_type": "bradley_terry_scoring"}},  # exports base + alpha * trees
}  # fmt: skip
EPOCHS = {"gradient_boosting": 10, "gradient_boosting_llm": 10}
"""Epochs (boosting rounds) where 2 would leave a model too small to test (default 2)."""


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    """A model store holding one small trained model per entry of SPECS, named after the entry."""
    home = tmp_path_factory.mktemp("runtime_store")
    battles = PlantedSkills.cyclic(n_models=5, n_topics=4).battles(400, seed=0)
    data = home / "battles.jsonl"
    data.write_text("".join(json.dumps(b.to_json()) + "\n" for b in battles))
    store = ModelStore(home)
    for name, spec in SPECS.items():
        document = {"model": {"name": name, "spec": spec}, "epochs": EPOCHS.get(name, 2), "batch_size": 64,
                    "data": {"path": str(data), "format": "canonical", "validation_split": 0.2, "seed": 0}}  # fmt: skip
        train_from_spec(parse_training_spec(document), store)
    return store


@pytest.fixture(scope="session")
def exported(trained_store: ModelStore, tmp_path_factory: pytest.TempPathFactory):
    """`exported(name, quantize="none") -> Path`: the model `name` of trained_store, exported once per session."""
    from router_runtime.export import export_model

    done: dict[tuple[str, str], Path] = {}

    def get(name: str, quantize: str = "none") -> Path:
        if (name, quantize) not in done:
            saved = trained_store.resolve(f"{SPECS[name]['model_type']}/{name}")
            out = tmp_path_factory.mktemp("exports") / f"{name}-{quantize}"
            export_model(saved, out, quantize=quantize, prompts=PARITY_PROMPTS)
            done[name, quantize] = out
        return done[name, quantize]

    return get


PARITY_PROMPTS = [
    "Write a poem about the sea", "Explain quantum entanglement simply", "def f(x): return x + 1  # fix this",
    "What is the capital of France?", "", "hi", "Summarize the plot of Hamlet in three sentences.",
    "Translate 'good morning' into German", "word " * 400, "Calcule l'intégrale de x^2 entre 0 et 1",
] * 2
"""Parity prompts of the tests (short: the default set is 100 prompts)."""


LENGTH_SPEC = {"model_type": "dn_embedding_length_prediction", "hidden_dims": [24, 16], "input_proj_dim": 8,
               "model_id_embedding_dim": 4, "use_skip_connections": True, "embedding_spec": TINY_EMBEDDING,
               "embedding_model_epochs": 1, "optimizer": OPTIMIZER}  # fmt: skip


@pytest.fixture(scope="session")
def length_store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    """A model store holding `dn_embedding_length_prediction/length`, trained on planted answer lengths."""
    from tests.neural.test_length_prediction import planted_battles

    home = tmp_path_factory.mktemp("length_store")
    data = home / "battles.jsonl"
    data.write_text("".join(json.dumps(b.to_json()) + "\n" for b in planted_battles(200, 0)))
    store = ModelStore(home)
    document = {"model": {"name": "length", "spec": LENGTH_SPEC}, "epochs": 4, "batch_size": 32,
                "data": {"path": str(data), "format": "canonical", "validation_split": 0.2, "seed": 0}}  # fmt: skip
    train_from_spec(parse_training_spec(document), store)
    return store


@pytest.fixture(scope="session")
def exported_length(length_store: ModelStore, tmp_path_factory: pytest.TempPathFactory):
    """`exported_length(quantize="none") -> Path`: the length model of length_store, exported once per session."""
    from router_runtime.export import export_model

    done: dict[str, Path] = {}

    def get(quantize: str = "none") -> Path:
        if quantize not in done:
            out = tmp_path_factory.mktemp("length_exports") / f"length-{quantize}"
            export_model(length_store.resolve("dn_embedding_length_prediction/length"), out, quantize=quantize,
                         prompts=PARITY_PROMPTS)  # fmt: skip
            done[quantize] = out
        return done[quantize]

    return get
