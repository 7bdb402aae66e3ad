"""Length models for `router-cli infer` and the HTTP server: telling one from a scorer, and loading it.

A length model (dn_embedding_length_prediction) predicts each candidate model's answer length in tokens. It
loads from an exported directory (`ExportedLengthPredictor`: ONNX encoder and numpy head, no torch) or from the
store as TYPE/NAME (the saved model's own predictor, torch). Both are a `LengthModel`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from router_core.store import ModelStore
from router_runtime.manifest import MANIFEST, read_manifest


class LengthModel(Protocol):
    """What serving needs of a length model: an `ExportedLengthPredictor` or a saved `router_core.length.LengthPredictor`."""

    def predict_lengths(self, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Predicted answer lengths in tokens, (n_prompts, n_models), float64, finite and positive for every model
        (one never seen in training gets the predictor's fallback)."""
        ...

    @property
    def tokenizer(self) -> str:
        """Name of the tokenizer lengths are counted in."""
        ...

    @property
    def known_models(self) -> tuple[str, ...]:
        """Models seen in training."""
        ...


def is_exported(source: str) -> bool:
    """Whether `source` names an exported directory (one holding a manifest.json) rather than TYPE/NAME."""
    return (Path(source) / MANIFEST).is_file()


def is_length_model(source: str, check_files: bool = True) -> bool:
    """Whether `source` (an exported directory or a saved model TYPE/NAME) predicts lengths rather than scores.

    Checks the export (every file's sha256, unless `check_files` is False because a checking load follows at once)
    or resolves the saved model, so a damaged export or a missing model is a `UserError` here. An exported
    directory is told apart without torch or the spec classes.
    """
    if is_exported(source):
        return read_manifest(Path(source), check_files).get("kind") == "length"
    from router_core.pipeline import model_task

    return model_task(ModelStore().resolve(source).model_type) == "length"


def load_length_model(source: str, threads: int | None = None) -> LengthModel:
    """The length model of an exported directory (torch-free; `threads`: ONNX Runtime's intra-op threads) or of a
    saved model TYPE/NAME (torch); a `UserError` when `source` is a scorer."""
    if is_exported(source):
        from router_runtime.exported import load_exported_length

        return load_exported_length(source, threads)
    from router_core.pipeline import load_length_predictor

    return load_length_predictor(ModelStore().resolve(source))
