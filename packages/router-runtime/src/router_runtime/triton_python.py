"""The Python-backend models of a repository written by `router_runtime.triton_repo`.

Each generated `model.py` is one line, `from router_runtime.triton_python import Head as TritonPythonModel`, so
the code lives (and is tested) here. `triton_python_backend_utils` exists only inside Triton's Python backend; it
is imported when a model is initialised.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from router_core.features import PromptFeatureScaler, prompt_feature_matrix
from router_core.routing import route
from router_core.scoring import fill_unknown_models

ScoreFn = Callable[[list[int], Sequence[str]], np.ndarray]
"""`score(rows, candidates)`: raw scores (len(rows), len(candidates)), NaN for models the scorer never saw."""


def _pb_utils() -> Any:
    import triton_python_backend_utils  # type: ignore[import-not-found]  # provided by Triton's Python backend

    return triton_python_backend_utils


def _strings(tensor: Any) -> np.ndarray:
    """A TYPE_STRING tensor as an array of str of the same shape (UnicodeDecodeError on invalid UTF-8)."""
    values = tensor.as_numpy()
    return np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values.reshape(-1)],
                    dtype=object).reshape(values.shape)  # fmt: skip


def _bytes(values: Sequence[str]) -> np.ndarray:
    return np.array([v.encode("utf-8") for v in values], dtype=object)


class _Model:
    """initialize / execute as the Python backend calls them; subclasses implement `_load` and `_run`."""

    def initialize(self, args: dict[str, str]) -> None:
        """Read the model's files from its version directory."""
        self.pb = _pb_utils()
        self.config: dict[str, Any] = json.loads(args["model_config"])
        self._load(Path(args["model_repository"]) / args["model_version"])

    def execute(self, requests: list[Any]) -> list[Any]:
        """One response per request; a request that cannot be scored gets an error response, not a crash."""
        responses = []
        for request in requests:
            try:
                outputs = self._run(request)
            except (ValueError, KeyError, UnicodeDecodeError) as error:
                responses.append(self.pb.InferenceResponse(output_tensors=[], error=self.pb.TritonError(str(error))))
                continue
            responses.append(self.pb.InferenceResponse(
                output_tensors=[self.pb.Tensor(name, value) for name, value in outputs.items()]))  # fmt: skip
        return responses

    def finalize(self) -> None:
        """Nothing to release."""

    def _input(self, request: Any, name: str) -> Any:
        tensor = self.pb.get_input_tensor_by_name(request, name)
        if tensor is None:
            raise ValueError(f"missing input {name}")
        return tensor

    def _parameter(self, key: str) -> str:
        return self.config["parameters"][key]["string_value"]

    def _load(self, directory: Path) -> None:
        raise NotImplementedError

    def _run(self, request: Any) -> dict[str, np.ndarray]:
        raise NotImplementedError


class Preprocess(_Model):
    """PROMPT (batch, 1) -> input_ids, attention_mask (batch, bucket length) and FEATURES (batch, 44)."""

    def _load(self, directory: Path) -> None:
        from router_runtime.encoder import PromptTokenizer

        self.tokenizer = PromptTokenizer(directory)
        self.buckets = sorted(int(b) for b in self._parameter("pad_buckets").split(","))
        scaler = directory / "scaler.json"
        self.scaler = PromptFeatureScaler.from_json(json.loads(scaler.read_text())) if scaler.is_file() else None
        self.ids_type = np.int32 if self._output_type("input_ids") == "TYPE_INT32" else np.int64

    def _output_type(self, name: str) -> str:
        return next(o["data_type"] for o in self.config["output"] if o["name"] == name)

    def _run(self, request: Any) -> dict[str, np.ndarray]:
        prompts = list(_strings(self._input(request, "PROMPT")).reshape(-1))
        ids = self.tokenizer.tokenize(prompts)
        longest = max((len(i) for i in ids), default=1)
        width = next((b for b in self.buckets if b >= longest), longest)
        tokens, mask = self.tokenizer.pad(ids, width)
        outputs: dict[str, np.ndarray] = {"input_ids": tokens.astype(self.ids_type), "attention_mask": mask.astype(self.ids_type)}
        if self.scaler is not None:
            outputs["FEATURES"] = self.scaler.transform(prompt_feature_matrix(prompts)).astype(np.float32)
        return outputs


def _candidates(models: np.ndarray) -> dict[tuple[str, ...], list[int]]:
    """Rows of MODELS (batch, n) grouped by their candidate list (usually one group: the client's list)."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for row, candidates in enumerate(models.tolist()):
        groups.setdefault(tuple(candidates), []).append(row)
    return groups


def _routed(scores: np.ndarray, candidates: Sequence[str]) -> tuple[list[str], np.ndarray]:
    index, best = route(scores)
    return [candidates[int(j)] for j in index], best


def _client_outputs(models: np.ndarray, score: ScoreFn) -> dict[str, np.ndarray]:
    """SCORES (batch, n) float64 (unknown models filled), BEST_MODEL (batch, 1), BEST_SCORE (batch, 1).

    `score(rows, candidates)` returns raw scores (len(rows), len(candidates)) with NaN for unknown models.
    """
    if models.ndim != 2 or models.shape[1] == 0:
        raise ValueError(f"MODELS must hold at least one candidate per prompt, got shape {models.shape}")
    scores = np.empty(models.shape, dtype=np.float64)
    best_model = np.empty((models.shape[0], 1), dtype=object)
    best_score = np.empty((models.shape[0], 1), dtype=np.float64)
    for candidates, rows in _candidates(models).items():
        part = fill_unknown_models(np.asarray(score(rows, candidates), dtype=np.float64), candidates)
        names, best = _routed(part, candidates)
        scores[rows], best_model[rows, 0], best_score[rows, 0] = part, _bytes(names), best
    return {"SCORES": scores, "BEST_MODEL": best_model, "BEST_SCORE": best_score}


class Head(_Model):
    """EMBEDDING (batch, dim) [+ FEATURES (batch, 44)], MODELS (batch, n) -> SCORES, BEST_MODEL, BEST_SCORE."""

    def _load(self, directory: Path) -> None:
        from router_runtime.head import load_head

        self.head = load_head(directory)
        self.index = {m: i for i, m in enumerate(self.head.models)}
        self.features = any(i["name"] == "FEATURES" for i in self.config["input"])

    def _run(self, request: Any) -> dict[str, np.ndarray]:
        from router_runtime.head import score_rows

        x = self._input(request, "EMBEDDING").as_numpy().astype(np.float32)
        if self.features:
            x = np.concatenate([x, self._input(request, "FEATURES").as_numpy().astype(np.float32)], axis=1)

        def score(rows: list[int], candidates: Sequence[str]) -> np.ndarray:
            out = np.full((len(rows), len(candidates)), np.nan)
            known = [j for j, m in enumerate(candidates) if m in self.index]
            if known:
                index = np.array([self.index[candidates[j]] for j in known], dtype=np.int64)
                out[:, known] = score_rows(self.head, x[rows], index)
            return out

        return _client_outputs(_strings(self._input(request, "MODELS")), score)


class ScoreTable(_Model):
    """A prompt-agnostic model: PROMPT (ignored), MODELS -> SCORES, BEST_MODEL, BEST_SCORE from its score table."""

    def _load(self, directory: Path) -> None:
        from router_runtime.exported import load_exported

        self.scorer = load_exported(directory)

    def _run(self, request: Any) -> dict[str, np.ndarray]:
        prompts = _strings(self._input(request, "PROMPT")).reshape(-1)
        models = _strings(self._input(request, "MODELS"))
        return _client_outputs(models, lambda rows, candidates: self.scorer.score(list(prompts[rows]), candidates))
