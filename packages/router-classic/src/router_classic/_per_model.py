"""Base of the closed-form prompt-agnostic scorers: one score per model, broadcast over prompts, saved as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from router_classic._common import broadcast_scores
from router_classic.kernels.pairs import win_matrix
from router_core.data.types import Battles
from router_core.errors import DataError
from router_core.scorer import RunConfig, TrainHooks
from router_core.specs import ClosedFormSpecBase, ModelSpecBase

STATE_FILE = "scores.json"


class PerModelScorer:
    """Fitted state: `index_` (model name -> position) and `scores_` (shape (k,)); subclasses add `summary_`.

    Subclasses implement `_fit_scores(train, run) -> scores` and may extend `_extra_state` / `_restore`.
    """

    spec_type: ClassVar[type[ModelSpecBase]]

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.history_: list[dict[str, float]] = []
        self.best_epoch_: int | None = None

    @property
    def known_models(self) -> tuple[str, ...]:
        """Models seen in training."""
        return tuple(self.index_)

    def preflight(self) -> None:
        """Nothing to check beyond the data."""

    def report(self) -> dict[str, Any]:
        """The best epoch, for scorers that choose one (Elo); closed-form scorers choose nothing."""
        return {} if self.best_epoch_ is None else {"best_epoch": self.best_epoch_}

    def fit(self, train: Battles, selection: Battles, run: RunConfig, hooks: TrainHooks) -> Self:
        """Fit on `train` in closed form (nothing is chosen on `selection`)."""
        from threadpoolctl import threadpool_limits

        self.index_ = {m: i for i, m in enumerate(train.models)}
        self.summary_: dict[str, Any] = {}
        # The linear systems are k x k with k at most a few hundred: one BLAS thread is fastest, and threaded
        # OpenBLAS on a busy machine made a 200 x 200 solve 20-50x slower (measured on the 2-core CI box).
        with threadpool_limits(limits=1, user_api="blas"):
            self.scores_ = np.asarray(self._fit_scores(train, run), dtype=np.float64)
        if isinstance(self.spec, ClosedFormSpecBase) and self.spec.print_summary:
            hooks.log(f"{self.spec.model_type}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in self.summary_.items()))
        return self

    def _fit_scores(self, train: Battles, run: RunConfig) -> np.ndarray:
        raise NotImplementedError

    def score(self, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """The model's score repeated for every prompt, shape (n_prompts, n_models); NaN for unknown models."""
        return broadcast_scores(self.index_, self.scores_, len(prompts), models)

    def save(self, directory: Path) -> None:
        """Write `scores.json` (per-model scores, fit summary and any extra state)."""
        state = {
            "scores": dict(zip(self.index_, self.scores_.tolist(), strict=True)),
            "summary": self.summary_,
        } | self._extra_state()
        (directory / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path, spec: Any) -> Self:
        """Rebuild the fitted scorer from `scores.json` and its spec."""
        state = json.loads((directory / STATE_FILE).read_text())
        scorer = cls(spec)
        scorer.index_ = {m: i for i, m in enumerate(state["scores"])}
        scorer.scores_ = np.array(list(state["scores"].values()), dtype=np.float64)
        scorer.summary_ = state["summary"]
        scorer._restore(state)
        return scorer

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _restore(self, state: dict[str, Any]) -> None:
        return None


def decisive_wins(train: Battles) -> np.ndarray:
    """Win matrix (k, k) of the decisive battles; a DataError when there are none."""
    if not train.decisive.any():
        raise DataError("no decisive battles (every battle is a tie or both_bad): nothing to rank models by")
    return win_matrix(train.model_a, train.model_b, train.winner, len(train.models))


def training_accuracy(wins: np.ndarray, scores: np.ndarray) -> float:
    """Share of decisive training battles whose winner has the strictly higher score."""
    higher = scores[:, None] > scores[None, :]
    return float((wins * higher).sum() / wins.sum())


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
