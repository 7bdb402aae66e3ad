"""Loading and scoring an exported model directory without torch: `load_exported(directory) -> ExportedScorer`.

A gradient_boosting export (kind "trees") scores its rows with XGBoost's predictor (router_runtime.trees), its
prompt inputs built by `router_core.tree_rows` as the fitted scorer builds them. An `ExportedScorer` scores like the saved model's own scorer (`score(prompts, models, batch_size)` ->
(n_prompts, n_models) float64, NaN for models it never saw), so `router_core.scoring.score_models` and the
server use it unchanged. Loading only reads the directory; every file's sha256 is checked against the manifest.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from router_core.errors import UserError
from router_core.features import N_FEATURES, PromptFeatureScaler, prompt_feature_matrix
from router_core.tree_rows import prompt_table
from router_runtime.backends import HeadRunner, cuda_available, select_backend
from router_runtime.encoder import OnnxEncoder
from router_runtime.head import Head, load_head, score_rows
from router_runtime.manifest import read_manifest
from router_runtime.trees import TreeHead

SCALER, SCORES, LENGTH = "scaler.json", "scores.json", "length.json"
UNSEEN_ROW = "(unseen model)"
"""Name of the last row of a length model's head: the fallback of every model the source never saw."""
LENGTH_FALLBACK = "the mean LLM embedding, model-ID vector and offset of the known models (the last head row)"


class ExportedScorer:
    """A scorer read from an exported directory (prompt-aware: encoder + head; gradient_boosting: [encoder +]
    trees; prompt-agnostic: a score table)."""

    def __init__(self, manifest: dict[str, Any], models: Sequence[str], *, table: np.ndarray | None = None,
                 encoder: OnnxEncoder | None = None, scaler: PromptFeatureScaler | None = None,
                 head: HeadRunner | None = None, trees: TreeHead | None = None,
                 backend: str = "onnx") -> None:  # fmt: skip
        self.manifest = manifest
        self.model_type: str = manifest["model_type"]
        self.backend = backend
        self._index = {m: i for i, m in enumerate(models)}
        self._table, self._encoder, self._scaler, self._head = table, encoder, scaler, head
        self._trees = trees

    @property
    def known_models(self) -> tuple[str, ...]:
        """Models seen in training."""
        return tuple(self._index)

    def prompt_inputs(self, prompts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Head inputs, shape (n, embedding dim [+ 44 scaled features]), float32; for trees the prompt table of
        `router_core.tree_rows` (scaled features, then the embedding, as the model's input_features list them)."""
        if self._trees is not None:
            encoder = self._encoder

            def encode(texts: Sequence[str]) -> np.ndarray:
                assert encoder is not None
                return encoder.encode(texts, batch_size)

            embed = None if encoder is None else encode
            return prompt_table(self._trees.blocks, prompts, self._scaler, embed, self._trees.embedding_grid)
        assert self._encoder is not None
        embedded = self._encoder.encode(prompts, batch_size)
        if self._scaler is None:
            return embedded
        return np.concatenate([embedded, self._scaler.transform(prompt_feature_matrix(prompts))], axis=1)

    def score(self, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Scores (n_prompts, n_models), float64; NaN for models never seen in training."""
        out = np.full((len(prompts), len(models)), np.nan)
        columns = [j for j, m in enumerate(models) if m in self._index]
        if not prompts or not columns:
            return out
        rows = np.array([self._index[models[j]] for j in columns], dtype=np.int64)
        if self._table is not None:
            out[:, columns] = self._table[rows][None, :]
            return out
        x = self.prompt_inputs(list(prompts), max(batch_size, 1))
        if self._trees is not None:
            out[:, columns] = self._trees(x, rows, max(batch_size, 1))
            return out
        assert self._head is not None
        out[:, columns] = self._head(x, rows)
        return out


class ExportedLengthPredictor(ExportedScorer):
    """A length model (dn_embedding_length_prediction) read from an exported directory: the ONNX encoder and the
    numpy head predict log tokens; `predict_lengths` answers for every model (unseen ones get the fallback row)."""

    def __init__(self, manifest: dict[str, Any], state: dict[str, Any], encoder: OnnxEncoder,
                 scaler: PromptFeatureScaler | None, head: Head) -> None:  # fmt: skip
        super().__init__(manifest, head.models[:-1], encoder=encoder, scaler=scaler, head=partial(score_rows, head))
        self.state = state
        self._fallback = len(head.models) - 1

    @property
    def tokenizer(self) -> str:
        """Name of the tokenizer lengths are counted in."""
        return str(self.state["tokenizer"])

    def predict_lengths(self, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Predicted answer lengths in tokens, shape (n_prompts, n_models), float64, all finite and positive."""
        out = np.zeros((len(prompts), len(models)))
        if not prompts or not models:
            return out
        rows = np.array([self._index.get(m, self._fallback) for m in models], dtype=np.int64)
        assert self._head is not None
        logs = self._head(self.prompt_inputs(list(prompts), max(batch_size, 1)), rows)
        return np.exp(logs.astype(np.float64))

    def score(self, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Refused: a length model predicts lengths (`predict_lengths`), not preference scores."""
        raise TypeError(f"{self.model_type} predicts answer lengths (predict_lengths), not scores")


def load_exported(directory: str | Path, backend: str = "auto", threads: int | None = None) -> ExportedScorer:
    """Load an exported model directory (read only) for scoring on `backend` ("auto", "onnx" or "triton"); a length
    model (manifest kind "length") loads as an `ExportedLengthPredictor` (numpy head; the backend does not apply).

    Args:
        directory: what `router_runtime.export.export_model` wrote.
        backend: "auto" picks triton when a CUDA GPU and the triton extra are there, else onnx.
        threads: ONNX Runtime intra-op threads; default: the CPU cores available to this process.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"exported model directory {directory} does not exist")
    manifest = read_manifest(directory)
    if manifest.get("kind") == "score_table":
        scores = json.loads((directory / SCORES).read_text())["scores"]
        return ExportedScorer(manifest, list(scores), table=np.array(list(scores.values()), dtype=np.float64),
                              backend="table")  # fmt: skip
    if manifest.get("kind") == "trees":
        return _load_trees(directory, manifest, threads)
    if manifest.get("kind") == "length":
        return load_exported_length(directory, threads, manifest)
    head = load_head(directory)
    chosen = select_backend(backend, exported=True, two_tower=head.two_tower)
    scaler, encoder = _prompt_stage(directory, manifest, head, threads)
    return ExportedScorer(manifest, head.models, encoder=encoder, scaler=scaler, head=_runner(head, chosen),
                          backend=chosen)  # fmt: skip


def load_exported_length(directory: str | Path, threads: int | None = None,
                         manifest: dict[str, Any] | None = None) -> ExportedLengthPredictor:  # fmt: skip
    """An exported length model; a UserError when `directory` holds another kind of export."""
    directory = Path(directory)
    manifest = manifest or read_manifest(directory)
    if manifest.get("kind") != "length":
        raise UserError(f"exported model {directory} is a {manifest.get('model_type')} scorer, not a length model")
    head = load_head(directory)
    state = json.loads((directory / LENGTH).read_text())
    if head.models[-1] != UNSEEN_ROW or list(head.models[:-1]) != state.get("models"):
        raise UserError(f"exported model {directory}: {LENGTH} and the head disagree on the models")
    scaler, encoder = _prompt_stage(directory, manifest, head, threads)
    return ExportedLengthPredictor(manifest, state, encoder, scaler, head)


def _prompt_stage(directory: Path, manifest: dict[str, Any], head: Head,
                  threads: int | None) -> tuple[PromptFeatureScaler | None, OnnxEncoder]:  # fmt: skip
    """The feature scaler (when the model uses prompt features) and the ONNX encoder, checked against the head."""
    scaler = PromptFeatureScaler.from_json(json.loads((directory / SCALER).read_text())) if manifest[
        "use_prompt_features"] else None  # fmt: skip
    encoder = OnnxEncoder(directory, threads, cuda=cuda_available())
    expected = head.input_dim - (0 if scaler is None else N_FEATURES)
    if encoder.dimension != expected:
        raise UserError(f"exported model {directory}: the encoder gives {encoder.dimension} values, the head expects "
                        f"{expected}")  # fmt: skip
    return scaler, encoder


def _load_trees(directory: Path, manifest: dict[str, Any], threads: int | None) -> ExportedScorer:
    """A gradient_boosting export: XGBoost on the CPU; the ONNX encoder only with the prompt_embedding input."""
    trees = TreeHead(directory, threads)
    scaler = (PromptFeatureScaler.from_json(json.loads((directory / SCALER).read_text()))
              if "prompt_features" in trees.blocks else None)  # fmt: skip
    encoder = OnnxEncoder(directory, threads, cuda=cuda_available()) if "prompt_embedding" in trees.blocks else None
    expected = trees.prompt_width - (N_FEATURES if scaler is not None else 0)
    if (encoder.dimension if encoder is not None else 0) != expected:
        raise UserError(f"exported model {directory}: the encoder gives "
                        f"{encoder.dimension if encoder is not None else 0} values, the trees expect {expected}")  # fmt: skip
    return ExportedScorer(manifest, trees.models, encoder=encoder, scaler=scaler, trees=trees,
                          backend="onnx" if encoder is not None else "xgboost")  # fmt: skip


def _runner(head: Head, backend: str) -> HeadRunner:
    if backend == "triton":
        from router_runtime.backends.triton import TritonHead

        return TritonHead(head)
    return partial(score_rows, head)
