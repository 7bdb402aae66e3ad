"""The rows gradient_boosting's trees score: [prompt inputs, model inputs] for every (prompt, model) pair.

The fitted scorer (router_classic.gradient_boosting) and its torch-free export (router_runtime.trees) both build
their input matrices here, so a model scores the same rows in training, in process and when served. Only numpy:
the booster itself (XGBoost) stays with its callers.

Row layout, by block in this order (blocks absent from `input_features` take no columns):
    prompt_features   the 44 scaled prompt features         names prompt_features:<feature name>
    prompt_embedding  the sentence embedding of the prompt,  names prompt_embedding:<i>
                      rounded to multiples of EMBEDDING_GRID
    model_id          the model's index (categorical)        name  model_id
    model_embedding   the model's LLM-embedding vector       names model_embedding:<i>
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from router_core.features import FEATURE_NAMES, PromptFeatureScaler, prompt_feature_matrix

EMBEDDING_GRID = 2.0**-12
"""Step the prompt embedding is rounded to before it enters the trees (in training and at inference alike).

XGBoost's split thresholds are values of the training data, and a training prompt whose value is a threshold goes
right (x < threshold is false). Another implementation of the same encoder (the exported ONNX graph) gives values
about 1e-7 away, which sends such a prompt left: a few training prompts in a hundred changed score by 0.1 without
it. On the grid both encoders give the same value unless one lies within 1e-7 of a midpoint between grid points;
the step (2.4e-4) is far below the spread of an embedding coordinate (about 0.05) and XGBoost's 256 bins.
"""
Embed = Callable[[Sequence[str]], np.ndarray]
"""Sentence embeddings of prompts, shape (n, dimension), float32."""
Predict = Callable[[np.ndarray], np.ndarray]
"""The booster's raw margins of rows (n_rows, width) float32, shape (n_rows,)."""


def prompt_table(blocks: Sequence[str], prompts: Sequence[str], scaler: PromptFeatureScaler | None,
                 embed: Embed | None, embedding_grid: float = EMBEDDING_GRID) -> np.ndarray:  # fmt: skip
    """Prompt inputs, shape (n_prompts, prompt width), float32: the scaled features, then the sentence embedding
    rounded to multiples of `embedding_grid` (0: not rounded)."""
    parts = [np.zeros((len(prompts), 0), dtype=np.float32)]
    if "prompt_features" in blocks:
        assert scaler is not None, "the prompt_features block needs the fitted scaler"
        parts.append(scaler.transform(prompt_feature_matrix(list(prompts))).astype(np.float32))
    if "prompt_embedding" in blocks:
        assert embed is not None, "the prompt_embedding block needs a sentence encoder"
        embedded = np.asarray(embed(prompts), dtype=np.float32)
        if embedding_grid > 0:  # a power of two: scaling is exact, rounding is the only change
            embedded = (np.rint(embedded / np.float32(embedding_grid)) * np.float32(embedding_grid)).astype(np.float32)
        parts.append(embedded)
    return np.concatenate(parts, axis=1).astype(np.float32)


def model_table(blocks: Sequence[str], n_models: int, vectors: np.ndarray | None) -> np.ndarray:
    """Model inputs, shape (n_models, model width), float32: the model's index (categorical), then its LLM vector."""
    parts = [np.zeros((n_models, 0), dtype=np.float32)]
    if "model_id" in blocks:
        parts.append(np.arange(n_models, dtype=np.float32)[:, None])
    if "model_embedding" in blocks:
        assert vectors is not None and len(vectors) == n_models, "the model_embedding block needs one vector per model"
        parts.append(np.asarray(vectors, dtype=np.float32))
    return np.concatenate(parts, axis=1).astype(np.float32)


def feature_layout(blocks: Sequence[str], prompt_width: int, vector_width: int) -> tuple[list[str], list[str]]:
    """Feature names (prefixed by block) and XGBoost feature types ("q" numeric, "c" categorical) of a row."""
    names: list[str] = []
    if "prompt_features" in blocks:
        names += [f"prompt_features:{n}" for n in FEATURE_NAMES]
    if "prompt_embedding" in blocks:
        names += [f"prompt_embedding:{i}" for i in range(prompt_width - len(names))]
    if "model_id" in blocks:
        names.append("model_id")
    if "model_embedding" in blocks:
        names += [f"model_embedding:{i}" for i in range(vector_width)]
    return names, ["c" if n == "model_id" else "q" for n in names]


def pair_rows(prompts: np.ndarray, models: np.ndarray, prompt_rows: np.ndarray, model_rows: np.ndarray) -> np.ndarray:
    """Rows (prompts[prompt_rows[i]], models[model_rows[i]]), shape (len(prompt_rows), width), float32."""
    return np.concatenate([prompts[prompt_rows], models[model_rows]], axis=1)


def score_grid(predict: Predict, prompts: np.ndarray, models: np.ndarray, ids: np.ndarray,
               batch_size: int = 128) -> np.ndarray:  # fmt: skip
    """Scores (n_prompts, len(ids)), float64, of every prompt row against the model rows `ids`, `batch_size`
    prompts (times len(ids) rows) per call of `predict`."""
    out = np.empty((len(prompts), len(ids)), dtype=np.float64)
    step = max(batch_size, 1)
    for start in range(0, len(prompts), step):
        rows = np.arange(start, min(start + step, len(prompts)))
        data = pair_rows(prompts, models, np.repeat(rows, len(ids)), np.tile(ids, len(rows)))
        out[rows] = np.asarray(predict(data), dtype=np.float64).reshape(len(rows), len(ids))
    return out
