"""`simple_scoring`: one learnable score per model (prompt-agnostic), trained with the shared loop and optimizer.

Decisive battles use the ranking loss; a tie pushes both scores above +eps and both_bad both below -eps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import Tensor, nn

from router_core.data.types import Battles
from router_core.scorer import RunConfig, TrainHooks
from router_core.specs import SimpleScoringSpec
from router_neural.state_io import load_state, save_state
from router_neural.training import LoopState, PairData, seed_everything, train_pairs

STATE = "state"


class ModelScores(nn.Module):
    """A zero-initialised scalar per model."""

    def __init__(self, n_models: int) -> None:
        super().__init__()
        self.scores = nn.Parameter(torch.zeros(n_models))

    def forward(self, rows: Tensor, models: Tensor) -> Tensor:
        """Scores of `models` (n,); the prompt rows are ignored."""
        return self.scores[models]


def _pairs(battles: Battles, index: dict[str, int]) -> PairData:
    lookup = np.array([index.get(m, -1) for m in battles.models], dtype=np.int64)
    a, b = (lookup[battles.model_a], lookup[battles.model_b]) if len(battles) else (np.zeros(0, np.int64),) * 2
    data = PairData(np.zeros(len(battles), dtype=np.int64), a, b, battles.winner.astype(np.int64))
    return data.select((a >= 0) & (b >= 0))


class SimpleScoringScorer:
    """Per-model scores by gradient descent; the same score for every prompt, NaN for unknown models."""

    spec_type: ClassVar[type[SimpleScoringSpec]] = SimpleScoringSpec

    def __init__(self, spec: SimpleScoringSpec) -> None:
        self.spec = spec
        self.history_: list[dict[str, float]] = []

    @property
    def known_models(self) -> tuple[str, ...]:
        """Models seen in training."""
        return tuple(getattr(self, "models_", ()))

    def preflight(self) -> None:
        """Nothing to check beyond the data."""

    def report(self) -> dict[str, Any]:
        """The epoch kept (best on the selection battles)."""
        return {"best_epoch": self.loop_.best_epoch}

    def fit(self, train: Battles, selection: Battles, run: RunConfig, hooks: TrainHooks) -> Self:
        """Train the scores, keeping the epoch best on `selection`; with `run.resume`, continue from the current
        ones (new models start at 0)."""
        resume = run.resume and hasattr(self, "module_")
        seed_everything(run.seed)
        old = list(self.models_) if resume else []
        models = old + [m for m in train.models if m not in set(old)]
        module = ModelScores(len(models))
        previous = None
        if resume:
            module.scores.data[: len(old)] = self.module_.scores.data
            previous = self.loop_ if len(models) == len(old) else LoopState(self.loop_.epochs_completed,
                                                                            history=self.loop_.history)  # fmt: skip
        self.models_, self.module_ = tuple(models), module
        index = {m: i for i, m in enumerate(models)}
        checkpoint = hooks.checkpoint
        self.loop_ = train_pairs(module, module, _pairs(train, index), _pairs(selection, index), self.spec, run, hooks,
                                 n_models=len(models), previous=previous, desc="simple_scoring",
                                 on_checkpoint=(lambda epoch: checkpoint(self, epoch)) if checkpoint else None)  # fmt: skip
        self.history_ = self.loop_.history
        return self

    def score(self, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """The learned score of every known model, repeated for each prompt; NaN for unknown models."""
        index = {m: i for i, m in enumerate(self.models_)}
        values = self.module_.scores.detach().double().cpu().numpy()
        row = np.array([values[index[m]] if m in index else np.nan for m in models], dtype=np.float64)
        return np.broadcast_to(row, (len(prompts), len(models))).copy()

    def save(self, directory: Path) -> None:
        """Write state.safetensors + state.json."""
        loop = self.loop_
        save_state(directory, STATE, {
            "format": 2, "models": list(self.models_),
            "scores": self.module_.scores.data,
            "loop": {"epochs_completed": loop.epochs_completed, "best_epoch": loop.best_epoch,
                     "optimizer": loop.optimizer, "scheduler": loop.scheduler},
            "history": self.history_,
        })  # fmt: skip

    @classmethod
    def load(cls, directory: Path, spec: SimpleScoringSpec) -> Self:
        """Rebuild from `save`'s files and the spec."""
        state = load_state(directory, STATE)
        scorer = cls(spec)
        scorer.models_ = tuple(state["models"])
        scorer.module_ = ModelScores(len(scorer.models_))
        scorer.module_.scores.data = state["scores"].float()
        loop = state["loop"]
        scorer.history_ = state["history"]
        scorer.loop_ = LoopState(loop["epochs_completed"], loop["best_epoch"], loop["optimizer"], loop["scheduler"],
                                 list(scorer.history_))  # fmt: skip
        return scorer
