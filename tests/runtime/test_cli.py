"""`router-cli export` and `router-cli infer --backend`: exit codes, the seed's output format, clear errors."""

import json

import numpy as np
import pytest

from router_cli import main


@pytest.fixture
def store_home(trained_store, monkeypatch):
    monkeypatch.setenv("ROUTER_HOME", str(trained_store.home))
    return trained_store


def infer(model: str, out, *extra: str) -> dict:
    code = main(["infer", "--model", model, "--models-to-score", "model-1", "model-0", "unseen", "--prompts",
                 "Write a sonnet", "Fix my SQL query", "--output-path", str(out), *extra])  # fmt: skip
    assert code == 0
    return json.loads(out.read_text())


def test_export_then_infer_matches_the_torch_path(store_home, tmp_path, capsys):
    out = tmp_path / "exported"
    assert main(["export", "--model", "dense_network/dense_network_nofeat", "--output", str(out)]) == 0
    assert "max abs diff" in capsys.readouterr().out
    onnx = infer(str(out), tmp_path / "onnx.json")  # auto: onnx for an exported directory (no GPU here)
    reference = infer("dense_network/dense_network_nofeat", tmp_path / "torch.json", "--backend", "torch")
    assert list(onnx) == ["model-1", "model-0", "unseen"] and all(len(v) == 2 for v in onnx.values())
    np.testing.assert_allclose(np.array(list(onnx.values())), np.array(list(reference.values())), atol=1e-4)
    assert onnx["unseen"] == [(a + b) / 2 for a, b in zip(onnx["model-1"], onnx["model-0"], strict=True)]


def test_backend_mistakes_are_clear(store_home, tmp_path, capsys):
    assert main(["infer", "--model", "dense_network/dense_network_nofeat", "--models-to-score", "model-1",
                 "--prompts", "x", "--backend", "onnx"]) == 2  # fmt: skip
    assert "run `router-cli export` first" in capsys.readouterr().err
    assert main(["export", "--model", "dense_network/missing", "--output", str(tmp_path / "o")]) == 2
    assert "no saved model 'dense_network/missing'" in capsys.readouterr().err
    assert main(["export", "--model", "dense_network/dense_network", "--output", str(tmp_path), "--format", "x"]) == 2
