"""Answer-length prediction without torch: the samples (every answer of every battle), the length metrics, the
per-model median baseline, the `LengthPredictor` protocol length model types implement, and `evaluate_lengths`.

Lengths are token counts of a named tokenizer (the predictor's `tokenizer`); metric definitions are in
`length_metrics` and docs/models/dn_embedding_length_prediction.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from router_core.data.types import Battles
from router_core.errors import DataError
from router_core.scorer import RunConfig, TrainHooks
from router_core.specs import ModelSpecBase

METRICS = ("mae", "median_abs_rel_error", "rmse_log", "median_ratio")
"""The length metrics, in the order tables show them."""


@dataclass(frozen=True)
class LengthSamples:
    """(prompt, model, response) of every answer in some battles, aligned lists."""

    prompts: list[str]
    models: list[str]
    responses: list[str]

    def __len__(self) -> int:
        return len(self.responses)


def length_samples(battles: Battles) -> LengthSamples:
    """Every answer in `battles`: both sides, whatever the outcome (ties and both_bad too; a length needs no
    winner), where the prompt and the response are not blank. An answer repeated verbatim (same prompt, model and
    text: one MT-Bench answer shown to several judges) counts once."""
    seen: dict[tuple[str, str, str], None] = {}
    for record in battles.records:
        if not record.prompt or not record.prompt.strip():
            continue
        for model, response in ((record.model_a, record.response_a), (record.model_b, record.response_b)):
            if response and response.strip():
                seen.setdefault((record.prompt, model, response), None)
    return LengthSamples([p for p, _, _ in seen], [m for _, m, _ in seen], [r for _, _, r in seen])


def length_metrics(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float | None]:
    """MAE in tokens, median |pred - actual| / actual, RMSE of log(pred) - log(actual), and median pred / actual.

    None for every metric when there is no sample (so the JSON stays valid).

    Args:
        predicted: shape (n,), predicted lengths in tokens (> 0).
        actual: shape (n,), true lengths in tokens (counts below 1 are taken as 1).
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    actual = np.maximum(np.asarray(actual, dtype=np.float64), 1.0)
    if predicted.shape != actual.shape:
        raise ValueError(f"predicted {predicted.shape} and actual {actual.shape} differ in shape")
    if predicted.size == 0:
        return dict.fromkeys(METRICS)
    ratio = predicted / actual
    return {
        "mae": float(np.mean(np.abs(predicted - actual))),
        "median_abs_rel_error": float(np.median(np.abs(ratio - 1.0))),
        "rmse_log": float(np.sqrt(np.mean(np.log(ratio) ** 2))),
        "median_ratio": float(np.median(ratio)),
    }


@dataclass(frozen=True)
class MedianBaseline:
    """Each model's median training length; a model without training answers gets the median of all of them."""

    medians: dict[str, float]
    global_median: float

    @classmethod
    def fit(cls, models: Sequence[str], lengths: np.ndarray) -> MedianBaseline:
        """Medians of `lengths` (n,) grouped by `models` (n,); a `DataError` when there is no sample."""
        lengths = np.asarray(lengths, dtype=np.float64)
        if lengths.size == 0:
            raise DataError("no answers to take median lengths of (the battles have no response texts)")
        names = np.asarray(models, dtype=object)
        medians = {str(m): float(np.median(lengths[names == m])) for m in dict.fromkeys(models)}
        return cls(medians, float(np.median(lengths)))

    def predict(self, models: Sequence[str]) -> np.ndarray:
        """Baseline length of every entry of `models`, shape (len(models),)."""
        return np.array([self.medians.get(m, self.global_median) for m in models], dtype=np.float64)

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form (for a model's state file)."""
        return {"medians": self.medians, "global_median": self.global_median}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MedianBaseline:
        """Inverse of `to_json`."""
        return cls({str(k): float(v) for k, v in data["medians"].items()}, float(data["global_median"]))


@runtime_checkable
class LengthPredictor(Protocol):
    """The length twin of `Scorer`: construct from a spec, `fit`, `predict_lengths`; `save` / `load` round-trip.

    Unlike `score`, `predict_lengths` answers for every model: one never seen in training gets the predictor's
    fallback (for dn_embedding_length_prediction the mean model-ID and LLM embedding).
    """

    spec_type: ClassVar[type[ModelSpecBase]]
    spec: ModelSpecBase
    history_: list[dict[str, float]]
    baseline_: MedianBaseline
    """The per-model median baseline of the training answers (reported next to the model's own metrics)."""

    def __init__(self, spec: Any) -> None: ...

    @property
    def tokenizer(self) -> str:
        """Name of the tokenizer lengths are counted in."""
        ...

    def preflight(self) -> None:
        """Check encoders and the tokenizer before any data is read."""
        ...

    def fit(self, train: Battles, selection: Battles, run: RunConfig, hooks: TrainHooks) -> Self:
        """Learn from every answer in `train`; the epoch kept is chosen on `selection`'s answers. Returns self."""
        ...

    def predict_lengths(self, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Predicted answer lengths in tokens, shape (n_prompts, n_models), float64, all finite and positive."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> np.ndarray:
        """Length of every text in the predictor's tokenizer, shape (n,), int64."""
        ...

    def report(self) -> dict[str, Any]:
        """What the last fit chose from data (the best epoch), for meta.json; JSON-ready."""
        ...

    @property
    def known_models(self) -> tuple[str, ...]:
        """Models seen in training."""
        ...

    def save(self, directory: Path) -> None:
        """Write the fitted state (never the spec) into an existing, empty directory."""
        ...

    @classmethod
    def load(cls, directory: Path, spec: Any) -> Self:
        """Rebuild a fitted predictor from `save`'s files and its spec."""
        ...


def sample_predictions(predictor: LengthPredictor, samples: LengthSamples, batch_size: int = 128) -> np.ndarray:
    """Predicted length of every sample, shape (n,): each distinct prompt is predicted once for every model."""
    if len(samples) == 0:
        return np.zeros(0)
    prompts, row = np.unique(np.array(samples.prompts, dtype=object), return_inverse=True)
    models, column = np.unique(np.array(samples.models, dtype=object), return_inverse=True)
    table = np.asarray(predictor.predict_lengths(list(prompts), list(models), batch_size), dtype=np.float64)
    return table[row, column]


@dataclass(frozen=True)
class LengthPredictions:
    """A fitted predictor's and its baseline's lengths for every answer of some battles, aligned with `samples`."""

    samples: LengthSamples
    actual: np.ndarray
    predicted: np.ndarray
    baseline: np.ndarray
    unknown: np.ndarray
    """bool (n,): the answer's model was not seen in training."""


def length_predictions(predictor: LengthPredictor, battles: Battles, batch_size: int = 128) -> LengthPredictions:
    """Actual tokens, predicted and baseline lengths of every answer in `battles` (`length_samples`)."""
    samples = length_samples(battles)
    known = set(predictor.known_models)
    return LengthPredictions(samples, predictor.count_tokens(samples.responses).astype(np.float64),
                             sample_predictions(predictor, samples, batch_size),
                             predictor.baseline_.predict(samples.models),
                             np.array([m not in known for m in samples.models], dtype=bool))  # fmt: skip


def length_report(predictions: Sequence[LengthPredictions], tokenizer: str) -> dict[str, Any]:
    """The length metrics of the model and, under `baseline`, of its baseline, over the answers of all
    `predictions` together (e.g. the held-out folds of a cross-validation), with `n_samples`, `n_unknown_model` and
    `median_actual`."""
    actual = np.concatenate([p.actual for p in predictions]) if predictions else np.zeros(0)
    predicted = np.concatenate([p.predicted for p in predictions]) if predictions else np.zeros(0)
    baseline = np.concatenate([p.baseline for p in predictions]) if predictions else np.zeros(0)
    return {
        **length_metrics(predicted, actual),
        "baseline": length_metrics(baseline, actual),
        "n_samples": int(actual.size),
        "n_unknown_model": int(sum(int(p.unknown.sum()) for p in predictions)),
        "median_actual": float(np.median(actual)) if actual.size else None,
        "tokenizer": tokenizer,
    }


def evaluate_lengths(predictor: LengthPredictor, battles: Battles, batch_size: int = 128) -> dict[str, Any]:
    """The length metrics of a fitted predictor on every answer in `battles`, and the same under `baseline` for its
    per-model median baseline; `n_samples` answers, of which `n_unknown_model` by models unseen in training."""
    return length_report([length_predictions(predictor, battles, batch_size)], predictor.tokenizer)
