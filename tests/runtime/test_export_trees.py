"""Export of gradient_boosting: XGBoost's JSON model scored by XGBoost without torch, equal to the in-process scorer."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from router_core.pipeline import load_scorer
from router_core.scoring import score_models
from router_runtime import load_exported
from router_runtime.export import ParityError, export_model
from router_runtime.server import create_app
from tests.runtime.conftest import PARITY_PROMPTS, SPECS

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ["How do I sort a list in Python?", "Tell me a joke about cats", "", "Prove that sqrt(2) is irrational"]


def saved(store, name):
    return store.resolve(f"gradient_boosting/{name}")


def training_prompts(store, n=40):
    """Prompts the trees were fitted on: their embedding values are split thresholds, the hardest case for parity."""
    rows = [json.loads(line) for line in (store.home / "battles.jsonl").read_text().splitlines()]
    return list(dict.fromkeys(r["prompt"] for r in rows if r["prompt"]))[:n]


@pytest.mark.parametrize("name", ["gradient_boosting", "gradient_boosting_llm"])
def test_exported_trees_score_like_the_scorer(trained_store, exported, name):
    directory = exported(name)
    scorer = load_exported(directory)
    models = [*scorer.known_models[::-1], "never-seen"]
    prompts = PROMPTS + training_prompts(trained_store)
    actual = scorer.score(prompts, models, batch_size=7)
    expected = load_scorer(saved(trained_store, name)).score(prompts, models)
    assert actual.shape == (len(prompts), len(models)) and actual.dtype == np.float64
    assert np.isnan(actual[:, -1]).all() and np.isnan(expected[:, -1]).all()
    np.testing.assert_allclose(actual[:, :-1], expected[:, :-1], atol=1e-4, rtol=0)
    assert np.ptp(actual[:, :-1]) > 0.01  # the trees do something, so agreement is not trivial
    filled = score_models(scorer, prompts[:2], models)  # the unseen-model fallback: the mean of the known ones
    np.testing.assert_allclose(filled[:, -1], filled[:, :-1].mean(axis=1))
    manifest = json.loads((directory / "manifest.json").read_text())
    blocks = SPECS[name]["input_features"]
    assert manifest["kind"] == "trees" and manifest["input_features"] == blocks and manifest["parity"]["max_abs_diff"] <= 1e-4
    assert {"booster.json", "trees.json", "scaler.json"} <= set(manifest["files"])
    assert ("model.onnx" in manifest["files"]) == ("prompt_embedding" in blocks)
    booster = json.loads((directory / "booster.json").read_text())  # XGBoost's JSON model format, not a pickle
    assert "learner" in booster
    trees = json.loads((directory / "trees.json").read_text())
    assert trees["models"] == sorted(trees["models"]) and (trees["model_vectors"] is not None) == (name.endswith("llm"))


def test_features_only_trees_need_no_encoder_and_int8_does_not_apply(trained_store, tmp_path):
    manifest = export_model(saved(trained_store, "gradient_boosting_llm"), tmp_path / "out", quantize="int8",
                            prompts=PARITY_PROMPTS)  # fmt: skip
    assert manifest["quantize"] == "none" and manifest["parity"]["max_abs_diff"] == 0.0
    assert not (tmp_path / "out" / "model.onnx").exists()


@pytest.mark.slow  # a second encoder export, quantised (about a minute)
def test_int8_trees_are_checked_and_refused_outside_the_bounds(trained_store, tmp_path):
    out = tmp_path / "int8"
    try:
        manifest = export_model(saved(trained_store, "gradient_boosting"), out, quantize="int8", prompts=PARITY_PROMPTS)
    except ParityError as error:
        assert "int8 scores keep Spearman" in str(error) and not out.exists()
    else:
        assert manifest["parity"]["spearman"] >= 0.99 and manifest["parity"]["top1_agreement"] >= 0.95


SCRIPT = """
import json, sys
from router_runtime import load_exported
from router_core.scoring import score_models
scorer = load_exported(sys.argv[1], threads=1)
scores = score_models(scorer, ["Write a haiku about autumn", ""], [*scorer.known_models, "unseen"])
print(json.dumps({"modules": sorted({m.split(".")[0] for m in sys.modules}), "scores": scores.tolist()}))
"""


@pytest.mark.parametrize("name", ["gradient_boosting", "gradient_boosting_llm"])
def test_exported_trees_score_without_torch(trained_store, exported, name):
    directory = exported(name)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(directory)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    loaded = set(result["modules"])
    assert "xgboost" in loaded and not loaded & {"torch", "transformers", "sentence_transformers", "router_classic"}
    assert ("onnxruntime" in loaded) == ("prompt_embedding" in SPECS[name]["input_features"])
    models = [*load_scorer(saved(trained_store, name)).known_models, "unseen"]
    expected = score_models(load_scorer(saved(trained_store, name)), ["Write a haiku about autumn", ""], models)
    np.testing.assert_allclose(result["scores"], expected, atol=1e-4)


def test_exported_trees_are_served(exported):
    directory = exported("gradient_boosting")
    scorer = load_exported(directory)
    models = [*scorer.known_models[:2], "never-seen"]
    with TestClient(create_app(str(directory))) as client:
        assert client.get("/models").json()["models"] == list(scorer.known_models)
        response = client.post("/score", json={"prompts": PROMPTS[:2], "models": models})
    assert response.status_code == 200, response.text
    expected = score_models(scorer, PROMPTS[:2], models)
    assert response.json() == {m: expected[:, j].tolist() for j, m in enumerate(models)}
