"""The numpy head equals the torch networks; the Triton kernel equals the numpy head (interpreted on CPU, and on
CUDA when there is a GPU); backend selection."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from router_core.errors import UserError
from router_neural.networks import DenseNetwork, DnEmbeddingNetwork
from router_runtime.backends import select_backend, triton_usable
from router_runtime.backends.torch import head_of
from router_runtime.head import load_head, save_head, score_rows

ROOT = Path(__file__).resolve().parents[2]
NETWORKS = {
    "dense": lambda: DenseNetwork(12, 5, 3, [16, 8], 0.2, model_bias=True),
    "dense_plain": lambda: DenseNetwork(12, 5, 3, [8], 0.0, model_bias=False),
    "dn_identity_skip": lambda: DnEmbeddingNetwork(8, 4, torch.randn(5, 6), 4, [12, 12], 0.1, True, True),
    "dn_linear_skip": lambda: DnEmbeddingNetwork(8, 4, torch.randn(5, 6), 4, [16, 8], 0.1, True, True),
    "dn_no_features": lambda: DnEmbeddingNetwork(12, 0, torch.randn(5, 6), 4, [8], 0.1, False, False),
}


def random_scorer(kind: str, seed: int = 0) -> SimpleNamespace:
    """A fitted-looking scorer around a network with every parameter drawn at random (no zero-initialised head)."""
    torch.manual_seed(seed)
    network = NETWORKS[kind]().eval()
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.normal_(0.0, 0.5)
    return SimpleNamespace(network_=network, models_=tuple(f"m{i}" for i in range(5)), base_=None, alpha_=1.0)


def torch_scores(network, x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    inputs, ids = torch.as_tensor(x), torch.as_tensor(rows)
    with torch.no_grad():
        scores = network(inputs.repeat_interleave(len(ids), dim=0), ids.repeat(len(inputs)))
    return scores.view(len(x), len(ids)).numpy()


@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_numpy_head_equals_the_torch_network(kind, tmp_path):
    scorer = random_scorer(kind)
    x = np.random.default_rng(1).normal(size=(7, 12)).astype(np.float32)
    rows = np.array([4, 0, 2])
    head = head_of(scorer)
    expected = torch_scores(scorer.network_, x, rows)
    assert np.abs(expected).max() > 0.1  # a non-trivial oracle
    np.testing.assert_allclose(score_rows(head, x, rows, chunk=3), expected, atol=1e-5, rtol=0)
    save_head(head, tmp_path)
    np.testing.assert_array_equal(score_rows(load_head(tmp_path), x, rows), score_rows(head, x, rows))


def test_base_and_alpha_wrap_the_head():
    head = head_of(random_scorer("dense"))
    x, rows = np.ones((2, 12), dtype=np.float32), np.arange(5)
    base = np.arange(5, dtype=np.float32)
    shifted = score_rows(head.with_base(base, 0.5), x, rows)
    np.testing.assert_allclose(shifted, base + 0.5 * score_rows(head, x, rows), atol=1e-6)


INTERPRETED = """
import json, sys
import numpy as np
from tests.runtime.test_backend_parity import random_scorer
from router_runtime.backends.torch import head_of
from router_runtime.backends.triton import TritonHead
from router_runtime.head import score_rows
result = {}
for kind in sys.argv[1:]:
    head = head_of(random_scorer(kind)).with_base(np.linspace(-1, 1, 5), 0.7)
    x = np.random.default_rng(2).normal(size=(3, 12)).astype(np.float32)
    rows = np.array([1, 3, 0, 4])
    result[kind] = float(np.abs(TritonHead(head, device="cpu")(x, rows) - score_rows(head, x, rows)).max())
print(json.dumps(result))
"""


def test_triton_kernel_equals_numpy_interpreted():
    pytest.importorskip("triton")
    env = os.environ | {"TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT)}
    kinds = ["dense", "dn_linear_skip"]
    done = subprocess.run([sys.executable, "-c", INTERPRETED, *kinds], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    differences = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(differences) == set(kinds) and max(differences.values()) <= 1e-4, differences


@pytest.mark.gpu
@pytest.mark.parametrize("kind", sorted(NETWORKS))
def test_triton_kernel_equals_numpy_on_cuda(kind):
    from router_runtime.backends.triton import TritonHead

    head = head_of(random_scorer(kind))
    x = np.random.default_rng(3).normal(size=(300, 12)).astype(np.float32)
    rows = np.array([4, 3, 2, 1, 0, 2])
    np.testing.assert_allclose(TritonHead(head)(x, rows), score_rows(head, x, rows), atol=1e-4, rtol=0)


def test_select_backend():
    assert select_backend("auto", exported=True) == ("triton" if triton_usable() else "onnx")
    assert select_backend("auto", exported=False) == ("triton" if triton_usable() else "torch")
    assert select_backend("onnx", exported=True) == "onnx"
    with pytest.raises(UserError, match="run `router-cli export` first"):
        select_backend("onnx", exported=False)
    with pytest.raises(UserError, match="unknown backend 'tensorrt'"):
        select_backend("tensorrt")
    if not triton_usable():
        with pytest.raises(UserError, match="needs a CUDA GPU"):
            select_backend("triton")
