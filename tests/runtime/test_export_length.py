"""Export of a dn_embedding_length_prediction model: predicted lengths equal the torch model's, torch-free."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from router_core.pipeline import load_length_predictor
from router_runtime import load_exported
from router_runtime.export import length_parity_stats

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ["Please elaborate on subject number 3", "Tell me about subject number 7", ""]
REF = "dn_embedding_length_prediction/length"


def test_length_parity_stats_known_answers():
    expected = np.array([[100.0, 10.0], [50.0, 20.0]])
    stats = length_parity_stats(expected, expected * np.array([[1.0, 1.01], [0.98, 1.0]]))
    assert stats["max_rel_diff"] == pytest.approx(0.02)
    assert stats["spearman"] == pytest.approx(1.0)


@pytest.mark.slow  # trains and exports a length model (~1 min on 2 cores)
def test_exported_lengths_equal_the_torch_model_and_unseen_models_get_the_fallback(length_store, exported_length):
    directory = exported_length()
    predictor = load_exported(directory)
    torch_model = load_length_predictor(length_store.resolve(REF))
    models = [*predictor.known_models, "never-seen"]
    actual, expected = predictor.predict_lengths(PROMPTS, models), torch_model.predict_lengths(PROMPTS, models)
    assert actual.shape == (3, len(models)) and np.isfinite(actual).all() and (actual > 0).all()
    np.testing.assert_allclose(actual, expected, rtol=1e-4)
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["kind"] == "length" and manifest["parity"]["max_rel_diff"] <= 1e-4
    assert predictor.tokenizer == torch_model.tokenizer
    with pytest.raises(TypeError, match="predict_lengths"):
        predictor.score(PROMPTS, models)


SCRIPT = """
import json, sys
from router_runtime import load_exported
from router_cli import main
predictor = load_exported(sys.argv[1], threads=1)
lengths = predictor.predict_lengths(["Please elaborate on subject number 1"], ["verbose", "plain"])
code = main(["infer", "--model", sys.argv[1], "--models-to-score", "verbose", "plain", "--prompts", "hello",
             "--output-path", sys.argv[2], "--threads", "1"])
heavy = [m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules]
print(json.dumps({"heavy": heavy, "lengths": lengths.tolist(), "code": code}))
"""


@pytest.mark.slow
def test_exported_length_model_predicts_without_torch_through_the_api_and_infer(exported_length, tmp_path):
    out = tmp_path / "lengths.json"
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(exported_length()), str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [] and result["code"] == 0
    verbose, plain = result["lengths"][0]
    assert verbose > plain > 0  # the planted x2 of the verbose model survives the export
    written = json.loads(out.read_text())
    assert list(written) == ["verbose", "plain"] and all(len(v) == 1 and v[0] > 0 for v in written.values())
