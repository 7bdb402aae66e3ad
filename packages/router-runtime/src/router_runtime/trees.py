"""An exported gradient_boosting model's trees: XGBoost's JSON model + trees.json, scored by XGBoost's predictor.

    booster.json   the booster in XGBoost's JSON model format (the round kept by best-round selection)
    trees.json     format, models (the model index: row i of the model table is models[i]), input_features,
                   prompt_width, embedding_grid (router_core.tree_rows.EMBEDDING_GRID), model_vectors (the
                   LLM-embedding table, with the model_embedding input, else null), base (per model, for a model
                   over a prompt-agnostic base, else null) and alpha: score = base[m] + alpha * trees

Rows are built by `router_core.tree_rows`, as the fitted scorer builds them, so the export scores the same rows
with the same trees. Needs the `trees` extra (xgboost, which does not import torch).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from router_core.errors import UserError
from router_core.tree_rows import feature_layout, model_table, score_grid

BOOSTER, TREES_JSON = "booster.json", "trees.json"
TREES_FORMAT = 1


def _xgboost() -> Any:
    try:
        import xgboost
    except ImportError as error:
        raise UserError("exported gradient_boosting models need XGBoost: install router-runtime[trees]") from error
    return xgboost


def save_trees(scorer: Any, directory: Path) -> list[str]:
    """Write booster.json and trees.json of a fitted gradient_boosting scorer; returns the file names."""
    blocks = list(scorer.spec.input_features)
    prompt_width = sum(name.startswith("prompt_") for name in scorer.booster_.feature_names)
    vectors = getattr(scorer, "model_vectors_", None) if "model_embedding" in blocks else None
    scorer.booster_.save_model(directory / BOOSTER)
    config = {
        "format": TREES_FORMAT,
        "models": list(scorer.known_models),
        "input_features": blocks,
        "prompt_width": int(prompt_width),
        "embedding_grid": float(scorer.embedding_grid_),
        "model_vectors": None if vectors is None else np.asarray(vectors, dtype=np.float32).tolist(),
        "base": None if scorer.base_ is None else scorer.base_.for_models(scorer.known_models).tolist(),
        "alpha": float(scorer.alpha_),
    }
    (directory / TREES_JSON).write_text(json.dumps(config) + "\n")
    return [BOOSTER, TREES_JSON]


class TreeHead:
    """The trees of an exported directory as a head: `head(x, rows)` scores prompt rows x (n, prompt_width),
    built by `router_core.tree_rows.prompt_table`, against the models at `rows`: shape (n, len(rows)), float64."""

    def __init__(self, directory: Path, threads: int | None = None) -> None:
        xgb = _xgboost()
        config = json.loads((directory / TREES_JSON).read_text())
        if config.get("format") != TREES_FORMAT:
            raise UserError(f"{directory / TREES_JSON}: trees format {config.get('format')!r}, this version reads "
                            f"{TREES_FORMAT}: export the model again")  # fmt: skip
        self.models: tuple[str, ...] = tuple(config["models"])
        self.blocks: list[str] = list(config["input_features"])
        self.prompt_width = int(config["prompt_width"])
        self.embedding_grid = float(config["embedding_grid"])
        vectors = None if config["model_vectors"] is None else np.asarray(config["model_vectors"], dtype=np.float32)
        self.model_inputs = model_table(self.blocks, len(self.models), vectors)
        base = config.get("base")  # absent in exports of models without a base
        self.base = None if base is None else np.asarray(base, dtype=np.float64)
        self.alpha = float(config.get("alpha", 1.0))
        self.names, self.types = feature_layout(self.blocks, self.prompt_width, 0 if vectors is None else vectors.shape[1])
        self.booster = xgb.Booster(model_file=str(directory / BOOSTER))
        if self.booster.feature_names is not None and list(self.booster.feature_names) != self.names:
            raise UserError(f"exported model {directory}: {BOOSTER} was trained on other inputs than {TREES_JSON} "
                            f"describes")  # fmt: skip
        params: dict[str, Any] = {"device": "cpu"}  # rows come from numpy: XGBoost's CPU predictor avoids a copy
        if threads:
            params["nthread"] = int(threads)
        self.booster.set_param(params)
        self._xgb = xgb

    def _predict(self, rows: np.ndarray) -> np.ndarray:
        matrix = self._xgb.DMatrix(rows, feature_names=self.names, feature_types=self.types, enable_categorical=True)
        return self.booster.predict(matrix, output_margin=True)

    def __call__(self, x: np.ndarray, rows: np.ndarray, batch_size: int = 128) -> np.ndarray:
        if x.shape[1] != self.prompt_width:
            raise ValueError(f"tree inputs have {x.shape[1]} prompt columns, the trees expect {self.prompt_width}")
        rows = np.asarray(rows, dtype=np.int64)
        trees = score_grid(self._predict, x, self.model_inputs, rows, batch_size)
        return trees if self.base is None else self.base[rows][None, :] + self.alpha * trees
