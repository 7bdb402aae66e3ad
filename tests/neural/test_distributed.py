"""Data-parallel training: sharding, DDP over 2 gloo CPU processes against one process, and torchrun end to end.

Tolerance. With the same seed every rank draws the same epoch order and takes a contiguous shard of each global
batch; DDP averages the ranks' gradients and each rank's loss is scaled so that the average is the gradient of the
global batch's mean. So a 2-process step differs from the 1-process step only in the order float32 additions are
done (the batch sum is split in two and added across ranks): about 1e-7 relative per step. Adam and a handful of
epochs amplify that little; 1e-4 absolute on scores of order 1 leaves a margin of a few hundred, while a real bug
(a wrong shard, an unscaled loss, unsynchronised weights) moves scores by 1e-2 or more.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from router_core.specs import DenseNetworkSpec
from router_core.testing import quiet_fit_args
from router_neural.distributed import local_batch, shard
from router_neural.networks import DenseNetwork
from router_neural.training import PairData, train_pairs

TOLERANCE = 1e-4
SPEC = DenseNetworkSpec(hidden_dims=[16], model_id_embedding_dim=3, dropout=0.0,
                        optimizer={"optimizer_type": "adam", "learning_rate": 0.01},
                        non_ranking_loss_coeff=0.1, gradient_clip=1.0)  # fmt: skip


def test_shards_tile_every_batch_in_rank_order():
    for world in (1, 2, 3, 8):
        for n in (0, 1, 5, 31, 32, 64, 1001):
            parts = [shard(n, r, world) for r in range(world)]
            assert [i for p in parts for i in range(n)[p]] == list(range(n))  # disjoint, complete, in order
            sizes = [len(range(n)[p]) for p in parts]
            assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    batch = torch.arange(10, 17)  # 7 battles over 2 ranks: 4 + 3
    assert local_batch(batch, 0, 2).tolist() == [10, 11, 12, 13] and local_batch(batch, 1, 2).tolist() == [14, 15, 16]
    assert local_batch(batch, 0, 1) is batch  # one process: the whole batch, untouched


def _problem() -> tuple[torch.Tensor, PairData, PairData]:
    """Prompt features x (40, 6); model m wins on prompts where x . w_m is large; ties and both_bad too."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 6)).astype(np.float32)
    w = rng.standard_normal((4, 6))

    def draw(n: int) -> PairData:
        rows = rng.integers(0, 40, n)
        a = rng.integers(0, 4, n)
        b = (a + rng.integers(1, 4, n)) % 4
        margin = np.einsum("nd,nd->n", x[rows], w[a] - w[b])
        winner = np.where(rng.random(n) < 1 / (1 + np.exp(-margin)), 0, 1)
        winner[rng.random(n) < 0.15] = rng.integers(2, 4)
        return PairData(rows, a, b, winner.astype(np.int64))

    return torch.as_tensor(x), draw(403), draw(121)  # 403 = 12 batches of 32 + 19: the last shards are 10 and 9


def _train(out: Path) -> None:
    """Train the problem's network with the shared loop; rank 0 (or the single process) writes weights + history."""
    torch.manual_seed(0)
    table, train, selection = _problem()
    network = DenseNetwork(6, 4, 3, [16], 0.0, True)
    state = train_pairs(network, lambda rows, ids: network(table[rows], ids), train, selection, SPEC,
                        *quiet_fit_args(epochs=4, batch_size=32, seed=3), n_models=4)  # fmt: skip
    rank = int(os.environ.get("RANK", 0))
    weights = {k: v.detach().numpy() for k, v in network.state_dict().items()}
    np.savez(out / f"weights{rank}.npz", **weights)
    (out / f"history{rank}.json").write_text(json.dumps({"best": state.best_epoch, "history": state.history}))


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), CUDA_VISIBLE_DEVICES="")  # fmt: skip
    torch.set_num_threads(1)
    _train(Path(out))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _load(out: Path, rank: int) -> tuple[dict[str, np.ndarray], dict]:
    with np.load(out / f"weights{rank}.npz") as data:
        weights = dict(data)
    return weights, json.loads((out / f"history{rank}.json").read_text())


def test_two_gloo_processes_train_like_one(tmp_path, monkeypatch):
    single, multi = tmp_path / "single", tmp_path / "multi"
    single.mkdir()
    multi.mkdir()
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    _train(single)
    mp.start_processes(_worker, args=(2, _free_port(), str(multi)), nprocs=2, start_method="spawn")
    (one, one_history), (rank0, history0), (rank1, history1) = _load(single, 0), _load(multi, 0), _load(multi, 1)
    for name, value in one.items():
        assert np.array_equal(rank0[name], rank1[name]), name  # the ranks hold the same model
        np.testing.assert_allclose(rank0[name], value, atol=TOLERANCE, rtol=0, err_msg=name)
    assert history0["best"] == history1["best"] == one_history["best"]
    for two, ref in zip(history0["history"], one_history["history"], strict=True):
        # Accuracies are counts over all battles (reduced across ranks), so they agree exactly, and so do the rest.
        assert two["train_accuracy"] == pytest.approx(ref["train_accuracy"], abs=1e-6)
        assert two["selection_accuracy"] == pytest.approx(ref["selection_accuracy"], abs=1e-6)
        assert two["train_loss"] == pytest.approx(ref["train_loss"], abs=TOLERANCE)
        assert two["selection_loss"] == pytest.approx(ref["selection_loss"], abs=TOLERANCE)
    assert [h["selection_loss"] for h in history0["history"]] == [h["selection_loss"] for h in history1["history"]]
    torch.manual_seed(0)
    initial = DenseNetwork(6, 4, 3, [16], 0.0, True).state_dict()["mlp.0.weight"].numpy()
    assert np.abs(one["mlp.0.weight"] - initial).max() > 100 * TOLERANCE  # training moved weights far beyond it
