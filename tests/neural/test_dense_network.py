"""dense_network end to end: the seed document's specs, the CLI, resume from start_state, checkpoints, artefacts."""

import json
import logging
import re
import time
from pathlib import Path

import numpy as np
import pytest

from router_cli import main
from router_core.data.types import Battle
from router_core.errors import UserError
from router_core.pipeline import load_scorer, train_from_spec
from router_core.scoring import score_models
from router_core.specs import DenseNetworkSpec, parse_training_spec
from router_core.store import ModelStore
from router_core.testing import quiet_fit_args
from router_neural.dense_network import DenseNetworkScorer

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT.parent / "shared" / "seed" / "000_fc394b1cda1518de.txt"
SEED_EXAMPLES = [ROOT / "tests" / "fixtures" / "seed" / f"dense_network_{kind}.json" for kind in ("format", "example")]
"""The seed document's two dense_network specs (its format example and its Example), copied as written."""
QUIET = quiet_fit_args()


def seed_examples() -> list[dict]:
    return [json.loads(path.read_text()) for path in SEED_EXAMPLES]


@pytest.mark.skipif(not SEED.is_file(), reason=f"needs the seed document {SEED} (beside the checkout) to compare with")
def test_seed_example_fixtures_are_the_seed_documents_specs():
    blocks = re.findall(r"```json\n(.*?)```", SEED.read_text(), re.S)
    assert [json.loads(b) for b in blocks if '"dense_network"' in b] == seed_examples()


def write_battles(path: Path, battles: list[Battle]) -> str:
    path.write_text("".join(json.dumps(b.to_json()) + "\n" for b in battles))
    return str(path)


def small_spec(data_path: str, **overrides) -> dict:
    spec = {
        "model": {"name": "dn_small", "spec": {"model_type": "dense_network", "hidden_dims": [32],
                                                "model_id_embedding_dim": 4, "min_model_comparisons": 1,
                                                "optimizer": {"optimizer_type": "adamw", "learning_rate": 0.003}}},
        "data": {"path": data_path, "format": "canonical", "validation_split": 0.2, "seed": 0},
        "epochs": 3,
        "batch_size": 64,
    }
    return spec | overrides


@pytest.fixture
def battle_file(tmp_path, planted) -> str:
    return write_battles(tmp_path / "battles.jsonl", planted[1][:600])


def test_seed_examples_validate_as_written():
    for document in seed_examples():
        spec = parse_training_spec(document)
        assert isinstance(spec.model.spec, DenseNetworkSpec)
        assert spec.wandb is not None and spec.data.validation_split in (0.2, 0.15)  # the `valiation_split` spelling


def test_seed_format_example_trains_offline(battle_file):
    document = seed_examples()[0]  # all-MiniLM-L6-v2, hidden [256, 128, 64], AdamW with lr decay, W&B block
    document["data"] = {"path": battle_file, "format": "canonical", "max_samples": 400, "validation_split": 0.2, "seed": 42}
    document["epochs"] = 2
    outcome = train_from_spec(parse_training_spec(document), ModelStore(), QUIET[1])
    assert outcome.metrics["validation_accuracy"] > 0.5
    assert outcome.saved.ref == "dense_network/model-name"


def test_seed_example_with_unavailable_encoder_fails_fast_and_clearly(battle_file):
    import sentence_transformers  # noqa: F401 - the import is not what this test times

    document = seed_examples()[1]  # all-mpnet-base-v2: not packaged, the hub is unreachable here
    document["data"] = {"path": battle_file, "format": "canonical", "max_samples": 200, "valiation_split": 0.15, "seed": 42}
    start = time.perf_counter()
    with pytest.raises(UserError, match="all-mpnet-base-v2"):
        train_from_spec(parse_training_spec(document), ModelStore(), QUIET[1])
    assert time.perf_counter() - start < 10


@pytest.mark.slow  # ~7 s; the fallback in-process: test_unknown_models_score_nan_and_fall_back
def test_cli_train_then_infer_with_unknown_model(battle_file, tmp_path, capsys):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(small_spec(battle_file)))
    assert main(["train", "--spec-file", str(spec_file), "--no-progress"]) == 0
    saved = ModelStore().resolve("dense_network/dn_small")
    assert {p.suffix for p in saved.path.iterdir()} <= {".json", ".safetensors", ".png"}
    assert (saved.path / "training.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = tmp_path / "scores.json"
    assert main(["infer", "--model", "dense_network/dn_small", "--models-to-score", "model-0", "model-4", "gpt-x",
                 "--prompts", "Explain the integral", "--output-path", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result) == {"model-0", "model-4", "gpt-x"} and all(np.isfinite(v[0]) for v in result.values())


@pytest.mark.slow  # ~10 s; the loop's resume: tests/neural/test_training.py, start_state: tests/cli
def test_resume_from_start_state_continues_training(battle_file):
    store = ModelStore()
    first = train_from_spec(parse_training_spec(small_spec(battle_file)), store, QUIET[1])
    loaded = load_scorer(first.saved)
    prompts, models = ["Write something short about poem using rhyme."], ["model-0", "model-1"]
    resumed_spec = small_spec(battle_file, model={"name": "dn_more", "start_state": "dense_network/dn_small"})
    second = train_from_spec(parse_training_spec(resumed_spec), store, QUIET[1])
    scorer = load_scorer(second.saved)
    assert [h["epoch"] for h in scorer.history_] == [1, 2, 3, 4, 5, 6]  # numbering continues
    assert second.saved.meta["start_state"] == "dense_network/dn_small"
    assert scorer.loop_.epochs_completed == 6
    # best-epoch restore with the loaded weights as the model to beat: never worse on validation
    assert second.metrics["validation_accuracy"] >= first.metrics["validation_accuracy"] - 1e-12
    assert np.isfinite(scorer.score(prompts, models)).all()
    assert loaded.loop_.epochs_completed == 3


def test_save_every_writes_checkpoints(battle_file):
    train_from_spec(parse_training_spec(small_spec(battle_file, save_every=2, epochs=4)), ModelStore(), QUIET[1])
    names = {m.name for m in ModelStore().list()}
    assert {"dn_small", "dn_small@ep2", "dn_small@ep4"} <= names


def test_battles_without_prompt_are_dropped_with_a_count(tmp_path, planted, caplog):
    battles = planted[1][:300] + [Battle(model_a="model-0", model_b="model-1", winner="model_a", id=f"x{i}")
                                  for i in range(25)]
    path = write_battles(tmp_path / "mixed.jsonl", battles)
    with caplog.at_level(logging.WARNING):
        train_from_spec(parse_training_spec(small_spec(path, epochs=1)), ModelStore(), QUIET[1])
    assert "dropped 25 of 325 battles without prompt text" in caplog.text


def test_unknown_models_score_nan_and_fall_back(planted):
    from router_core.data.types import Battles

    spec = DenseNetworkSpec(hidden_dims=[8], model_id_embedding_dim=2, optimizer={"optimizer_type": "adam"})
    scorer = DenseNetworkScorer(spec).fit(Battles.from_records(planted[1][:200]), Battles.from_records([]),
                                          *quiet_fit_args(epochs=1))  # fmt: skip
    raw = scorer.score(["a prompt", "another"], ["model-0", "nobody"])
    assert np.isnan(raw[:, 1]).all() and np.isfinite(raw[:, 0]).all()
    filled = score_models(scorer, ["a prompt", "another"], ["model-0", "nobody"])
    np.testing.assert_allclose(filled[:, 1], filled[:, 0])  # the mean of the known candidates
