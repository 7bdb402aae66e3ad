"""Export of dense_network and dn_embedding: the directory, the manifest, scores equal to the torch model's."""

import json

import numpy as np
import pytest

from router_core.errors import UserError
from router_core.pipeline import load_scorer
from router_runtime import load_exported
from router_runtime.export import ParityError, export_model, parity_stats
from tests.runtime.conftest import SPECS

PROMPTS = ["How do I sort a list in Python?", "Tell me a joke about cats", "", "Prove that sqrt(2) is irrational"]


def torch_scores(trained_store, name, prompts, models):
    saved = trained_store.resolve(f"{SPECS[name]['model_type']}/{name}")
    return load_scorer(saved).score(prompts, models)


@pytest.mark.parametrize("name", ["dense_network", "dn_embedding"])  # dense_network_nofeat: tests/runtime/test_cli.py
def test_exported_scores_equal_the_torch_model(trained_store, exported, name):
    directory = exported(name)
    scorer = load_exported(directory, backend="onnx")
    models = [*scorer.known_models[::-1], "never-seen"]
    actual = scorer.score(PROMPTS, models)
    expected = torch_scores(trained_store, name, PROMPTS, models)
    assert actual.shape == (4, len(models)) and actual.dtype == np.float64
    assert np.isnan(actual[:, -1]).all() and np.isnan(expected[:, -1]).all()
    np.testing.assert_allclose(actual[:, :-1], expected[:, :-1], atol=1e-4, rtol=0)
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["parity"]["max_abs_diff"] <= 1e-4 and manifest["model_type"] == SPECS[name]["model_type"]
    assert set(manifest["files"]) >= {"model.onnx", "tokenizer.json", "encoder.json", "head.json", "head.safetensors"}
    assert ("scaler.json" in manifest["files"]) == SPECS[name].get("use_prompt_features", True)
    if "base_model" in SPECS[name]:  # a model over a base: the export carries base + alpha * head
        base = load_scorer(trained_store.resolve(f"{SPECS[name]['model_type']}/{name}")).base_
        assert base is not None and json.loads((directory / "head.json").read_text())["alpha"] >= 0


def test_int8_export_keeps_the_ranking(trained_store, exported):
    directory = exported("dense_network", "int8")
    parity = json.loads((directory / "manifest.json").read_text())["parity"]
    assert parity["spearman"] >= 0.99 and parity["top1_agreement"] >= 0.95
    assert (directory / "model.onnx").stat().st_size < (exported("dense_network") / "model.onnx").stat().st_size / 2


def test_prompt_agnostic_model_exports_its_score_table(trained_store, tmp_path):
    export_model(trained_store.resolve("elo_scoring/elo_scoring"), tmp_path / "elo")
    assert not (tmp_path / "elo" / "model.onnx").exists()
    scorer = load_exported(tmp_path / "elo")
    models = list(scorer.known_models)
    np.testing.assert_array_equal(scorer.score(PROMPTS, models), torch_scores(trained_store, "elo_scoring", PROMPTS, models))


def test_altered_or_missing_file_is_refused(exported, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(exported("dense_network"), copy)
    with (copy / "head.safetensors").open("r+b") as handle:
        handle.seek(-4, 2)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(UserError, match="head.safetensors was altered"):
        load_exported(copy)
    shutil.copyfile(exported("dense_network") / "head.safetensors", copy / "head.safetensors")
    (copy / "tokenizer.json").unlink()
    with pytest.raises(UserError, match="tokenizer.json is missing"):
        load_exported(copy)
    with pytest.raises(UserError, match="no manifest.json"):
        load_exported(tmp_path)


def test_infer_on_an_export_hashes_each_file_once_and_still_refuses_an_altered_one(exported, tmp_path, monkeypatch,
                                                                                 capsys):
    import shutil
    from collections import Counter

    import router_runtime.manifest as manifest
    from router_cli import main

    directory = exported("dense_network")  # exported (and hashed) before counting
    hashed: Counter[str] = Counter()
    real = manifest.sha256_of

    def counting(path):
        hashed[path.name] += 1
        return real(path)

    monkeypatch.setattr(manifest, "sha256_of", counting)
    out = tmp_path / "out.json"
    assert main(["infer", "--model", str(directory), "--models-to-score", "model-0", "model-1", "--prompts", "hi",
                 "--output-path", str(out)]) == 0  # fmt: skip
    listed = json.loads((directory / "manifest.json").read_text())["files"]
    assert hashed == Counter(dict.fromkeys(listed, 1))  # telling a length model from a scorer hashes nothing
    copy = tmp_path / "copy"
    shutil.copytree(directory, copy)
    with (copy / "head.safetensors").open("r+b") as handle:
        handle.seek(-4, 2)
        handle.write(b"\x00\x01\x02\x03")
    assert main(["infer", "--model", str(copy), "--models-to-score", "model-0", "--prompts", "hi"]) != 0
    assert "head.safetensors was altered" in capsys.readouterr().err


def test_export_refuses_a_directory_it_did_not_write(trained_store, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="non-empty directory that is not an earlier export"):
        export_model(trained_store.resolve("elo_scoring/elo_scoring"), tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_parity_stats_known_answers():
    expected = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    same = parity_stats(expected, expected + 1e-6)
    assert same["spearman"] == pytest.approx(1.0) and same["top1_agreement"] == 1.0
    assert same["max_abs_diff"] == pytest.approx(1e-6)
    swapped = parity_stats(expected, expected[:, ::-1])
    assert swapped["top1_agreement"] == 0.0 and swapped["max_abs_diff"] == 2.0


def test_parity_failure_is_refused_and_writes_nothing(trained_store, tmp_path, monkeypatch):
    import router_runtime.export as export

    monkeypatch.setattr(export, "FP32_MAX_ABS", -1.0)  # no export can meet it
    with pytest.raises(ParityError, match="fp32 scores differ"):
        export_model(trained_store.resolve("dense_network/dense_network_nofeat"), tmp_path / "out",
                     prompts=["a", "b"])  # fmt: skip
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []
