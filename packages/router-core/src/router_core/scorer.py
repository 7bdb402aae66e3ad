"""The `Scorer` protocol every model type implements, the run configuration a training run hands it, and the
callbacks (`TrainHooks`) it reports through.

`RunConfig` is built once from the training spec (`RunConfig.from_spec`); `TrainHooks` holds what the caller
supplies (where log lines go, progress bars, checkpoints, per-epoch metrics). A scorer never opens the model
store: references to saved models in its spec arrive resolved, as directories, in `RunConfig.references`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np

from router_core.base_model import BaseScores
from router_core.data.types import Battles
from router_core.specs import ModelSpecBase

if TYPE_CHECKING:
    from router_core.specs import TrainingSpec, WandbSpec


def _stderr(message: str) -> None:
    from tqdm.auto import tqdm  # writes around any open progress bar

    tqdm.write(message, file=sys.stderr)


@dataclass(frozen=True)
class RunConfig:
    """How long and how to train, from the training spec; the scorer's own hyper-parameters are in its spec."""

    epochs: int = 1
    batch_size: int = 32
    seed: int = 42
    print_every: int = 1
    save_every: int | None = None
    """Call `TrainHooks.checkpoint` every this many epochs (iterative scorers)."""
    resume: bool = False
    """Continue from the scorer's current (loaded) state instead of starting fresh (`model.start_state`)."""
    wandb: WandbSpec | None = None
    references: Mapping[str, Path] = field(default_factory=dict)
    """Spec field (e.g. `load_embedding_model_from`) -> directory of the saved model it names, resolved in the store."""
    base: BaseScores | None = None
    """The prompt-agnostic base of a prompt-aware scorer with `base_model` (fitted or loaded by the pipeline)."""

    @classmethod
    def from_spec(cls, spec: TrainingSpec, *, resume: bool = False, references: Mapping[str, Path] | None = None,
                  base: BaseScores | None = None) -> RunConfig:  # fmt: skip
        """The run configuration a training spec describes."""
        return cls(epochs=spec.epochs, batch_size=spec.batch_size, seed=spec.data.seed,
                   print_every=spec.log.print_every, save_every=spec.save_every, resume=resume, wandb=spec.wandb,
                   references=dict(references or {}), base=base)  # fmt: skip

    def reference(self, field_name: str) -> Path:
        """The resolved directory of the saved model named by the spec field `field_name`."""
        try:
            return self.references[field_name]
        except KeyError:
            raise KeyError(f"{field_name} was not resolved by the pipeline (RunConfig.references)") from None


@dataclass(frozen=True)
class TrainHooks:
    """What the caller of `fit` supplies: log lines, progress bars, checkpoints and per-epoch metrics."""

    log: Callable[[str], None] = _stderr
    """Where progress lines go."""
    progress: bool = True
    """Show progress bars (on stderr, only when it is a terminal)."""
    checkpoint: Callable[[Any, int], None] | None = None
    """Called as checkpoint(scorer, epoch) every `RunConfig.save_every` epochs by iterative scorers."""
    metrics: Callable[[dict[str, float], int], None] | None = None
    """Called as metrics(record, epoch) after every epoch (the pipeline forwards them to W&B)."""

    def bar(self, iterable: Any, desc: str, **kwargs: Any) -> Any:
        """A tqdm progress bar on stderr; off when `progress` is False or stderr is not a terminal."""
        return progress_bar(iterable, desc, enabled=self.progress, **kwargs)

    def epoch_done(self, record: dict[str, float], epoch: int) -> None:
        """Report one epoch's metrics to `metrics`, if set."""
        if self.metrics is not None:
            self.metrics({k: v for k, v in record.items() if k != "epoch"}, epoch)


def progress_bar(iterable: Any, desc: str, enabled: bool = True, **kwargs: Any) -> Any:
    """A tqdm bar on stderr that shows only on a terminal (and never when `enabled` is False)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, disable=None if enabled else True, leave=False, file=sys.stderr, **kwargs)


@runtime_checkable
class Scorer(Protocol):
    """Construct from a spec, `fit`, then `score` any prompts x models; `save` / `load` round-trip exactly.

    `score` returns NaN for a model the scorer never saw; `router_core.scoring.score_models` fills those.
    """

    spec_type: ClassVar[type[ModelSpecBase]]
    spec: ModelSpecBase
    history_: list[dict[str, float]]
    """Per-epoch metrics of the last fit (empty for closed-form scorers)."""

    def __init__(self, spec: Any) -> None: ...

    def preflight(self) -> None:
        """Check what the scorer needs beyond the data (an embedding model, say) before any data is read."""
        ...

    def fit(self, train: Battles, selection: Battles, run: RunConfig, hooks: TrainHooks) -> Self:
        """Learn from `train`; anything chosen from data (best epoch, ...) is chosen on `selection`. Returns self.

        Fitting twice equals fitting once with the second call's data, unless `run.resume` is set: then
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

    def report(self) -> dict[str, Any]:
        """What the last fit chose from data (best epoch, base model and alpha, ...), for meta.json and `list`;
        JSON-ready, empty when nothing was chosen."""
        ...

    def save(self, directory: Path) -> None:
        """Write the fitted state (JSON / npz / safetensors, never the spec) into an existing, empty directory."""
        ...

    @classmethod
    def load(cls, directory: Path, spec: Any) -> Self:
        """Rebuild a fitted scorer from `save`'s files and its spec (the store's spec.json is the one copy)."""
        ...
