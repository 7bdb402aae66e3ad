"""Damaged neural state and cache files: a clear error naming the file, or for caches a warning and a recompute."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from router_core.errors import DataError
from router_neural.embeddings import EmbeddingCache, text_digests
from router_neural.state_io import load_state, save_state


def test_state_json_naming_a_missing_tensor_is_an_error_naming_the_file(tmp_path: Path):
    save_state(tmp_path, "state", {"net": {"weight": torch.ones(2, 2)}, "epoch": 3})
    assert load_state(tmp_path, "state")["epoch"] == 3
    meta = json.loads((tmp_path / "state.json").read_text())
    meta["net"]["weight"]["__tensor__"] = "state.net.gone"
    (tmp_path / "state.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"state\.json: names a tensor that state\.safetensors does not hold"):
        load_state(tmp_path, "state")
    (tmp_path / "state.json").write_text("{")
    with pytest.raises(DataError, match=r"state\.json: not valid JSON"):
        load_state(tmp_path, "state")
    (tmp_path / "state.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(DataError, match=r"state\.safetensors: missing or damaged"):
        load_state(tmp_path, "state")


@pytest.mark.parametrize(
    "chunk",
    [{"keys": np.zeros((3, 32), np.uint8), "vectors": np.zeros((2, 4), np.float32)},  # lengths differ
     {"keys": np.zeros((2, 31), np.uint8), "vectors": np.zeros((2, 4), np.float32)},  # not digests
     {"keys": np.zeros((2, 32), np.uint8), "vectors": np.zeros((2, 5), np.float32)},  # another width
     {"keys": np.zeros((2, 32), np.uint8), "vectors": np.full((2, 4), np.nan, np.float32)},
     {"vectors": np.zeros((2, 4), np.float32)}],
)  # fmt: skip
def test_a_cache_chunk_of_the_wrong_shape_is_ignored_with_a_warning(tmp_path: Path, caplog, chunk: dict):
    cache = EmbeddingCache(tmp_path)
    digests = text_digests(["a", "b", "d"])  # the most vectors have width 4: a chunk of another width is the odd one
    cache.put(digests, np.ones((3, 4), np.float32))
    np.savez(tmp_path / "0000bad.npz", **chunk)
    with caplog.at_level(logging.WARNING):
        found = EmbeddingCache(tmp_path).get(np.concatenate([digests, text_digests(["c"])]))
    assert [None if v is None else v.tolist() for v in found] == [[1.0] * 4] * 3 + [None]
    assert "0000bad.npz" in caplog.text and "embedded again" in caplog.text
