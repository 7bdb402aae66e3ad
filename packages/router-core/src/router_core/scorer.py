"""The `Scorer` protocol every model type implements, and the options a training run passes to it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from router_core.data.types import Battles
from router_core.specs import ModelSpecBase

if TYPE_CHECKING:
    from router_core.specs import WandbSpec


def _stderr(message: str) -> None:
    from tqdm.auto import tqdm  # writes around any open progress bar

    tqdm.write(message, file=sys.stderr)


@dataclass(frozen=True)
class FitOptions:
    """How long and how to train; the scorer's own hyper-parameters are in its spec."""

    epochs: int = 1
    batch_size: int = 32
    seed: int = 42
    print_every: int = 1
    progress: bool = True
    """Show progress bars (on stderr)."""
    log: Callable[[str], None] = _stderr
    """Where progress lines go."""
    checkpoint: Callable[[Any, int], None] | None = None
    """Called as checkpoint(scorer, epoch) every `save_every` epochs by iterative scorers."""
    save_every: int | None = None
    resume: bool = False
    """Continue from the scorer's current (loaded) state instead of starting fresh (`model.start_state`)."""
    wandb: WandbSpec | None = None
    output_dir: Path | None = field(default=None)
    """Scratch directory for artefacts written during training (plots); copied next to the saved model."""

    def bar(self, iterable: Any, desc: str, **kwargs: Any) -> Any:
        """A tqdm progress bar on stderr; off when `progress` is False or stderr is not a terminal."""
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, disable=None if self.progress else True, leave=False, **kwargs)


@runtime_checkable
class Scorer(Protocol):
    """Construct from a spec, `fit`, then `score` any prompts x models; `save` / `load` round-trip exactly.

    `score` returns NaN for a model the scorer never saw; `router_core.scoring.score_models` fills those.
    """

    spec_type: ClassVar[type[ModelSpecBase]]
    spec: Any
    history_: list[dict[str, float]]
    """Per-epoch metrics of the last fit (empty for closed-form scorers)."""

    def __init__(self, spec: Any) -> None: ...

    def fit(self, train: Battles, validation: Battles, options: FitOptions) -> Self:
        """Learn from `train`; `validation` may drive early stopping / best-epoch restore. Returns self.

        Fitting twice equals fitting once with the second call's data, unless `options.resume` is set: then
        training continues from the current state (a loaded model).
        """
        ...

    def score(self, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Scores, shape (n_prompts, n_models), float64; higher = more likely preferred; NaN = unknown model."""
        ...

    @property
    def known_models(self) -> tuple[str, ...]:
        """Models seen in training."""
        ...

    def save(self, directory: Path) -> None:
        """Write state files (JSON / npz / safetensors) into an existing, empty directory."""
        ...

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Rebuild a fitted scorer from `save`'s files (the spec is in spec.json beside them)."""
        ...
