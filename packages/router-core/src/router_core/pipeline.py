"""A whole training run from a `TrainingSpec`: load data, filter, split, fit, measure, save.

The CLI's `train` is a thin wrapper around `train_from_spec`.
"""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from router_core.data.loading import load_battles
from router_core.data.prepare import (
    Split,
    downsample,
    drop_rare_models,
    drop_without_prompt,
    fingerprint,
    split_battles,
)
from router_core.data.types import Battle, Battles
from router_core.evaluation import calibrate, with_calibration
from router_core.metrics import pairwise_accuracy
from router_core.registry import scorer_class
from router_core.scorer import FitOptions, Scorer
from router_core.scoring import battle_scores
from router_core.specs import MODEL_SPECS, ModelSpecBase, TrainingSpec
from router_core.store import ModelStore, SavedModel

log = logging.getLogger(__name__)
_PACKAGES = ("router-core", "router-classic", "router-neural", "router-runtime", "router-cli", "numpy", "torch")


@dataclass(frozen=True)
class TrainOutcome:
    """What a training run produced."""

    saved: SavedModel
    metrics: dict[str, Any]


def prepare_split(records: list[Battle], spec: TrainingSpec, model_spec: ModelSpecBase) -> Split:
    """Down-sample, filter for this model type, and split grouped by prompt."""
    battles = downsample(records, spec.data.max_samples, spec.data.seed)
    if model_spec.prompt_aware:
        battles = drop_without_prompt(battles)
    threshold = getattr(model_spec, "min_model_occurrences", None) or getattr(model_spec, "min_model_comparisons", 1)
    battles = drop_rare_models(battles, threshold)
    return split_battles(battles, spec.data.validation_split, spec.data.seed)


def evaluate_accuracy(scorer: Scorer, battles: Battles) -> tuple[float, int]:
    """Pairwise accuracy of a fitted scorer on battles (ties excluded, equal scores wrong)."""
    score_a, score_b = battle_scores(scorer, battles)
    return pairwise_accuracy(score_a, score_b, battles.winner)


def train_from_spec(spec: TrainingSpec, store: ModelStore, options: FitOptions | None = None) -> TrainOutcome:
    """Run the training the spec describes and save the model under `model.name`."""
    scorer, model_spec, parent = _initial_scorer(spec, store)
    records = load_battles(spec.data)
    split = prepare_split(records, spec, model_spec)
    log.info("training %s on %d battles, validating on %d", model_spec.model_type, len(split.train), len(split.validation))
    options = options or FitOptions()
    options = FitOptions(
        epochs=spec.epochs,
        batch_size=spec.batch_size,
        seed=spec.data.seed,
        print_every=spec.log.print_every,
        progress=options.progress,
        log=options.log,
        save_every=spec.save_every,
        checkpoint=_checkpointer(spec, model_spec, store) if spec.save_every else None,
        wandb=spec.wandb,
        resume=parent is not None,
    )
    scorer.fit(split.train, split.validation, options)
    link = calibrate(scorer, split.train, seed=spec.data.seed)  # P(a beats b) for score-only models
    metrics = _metrics(scorer, split)
    meta = _meta(spec, model_spec, split, metrics, parent)
    saved_spec = spec.model_dump(mode="json", by_alias=True, exclude={"schema_ref"})
    saved_spec["model"]["spec"] = model_spec.model_dump(mode="json")
    path = store.save(model_spec.model_type, spec.model.name, with_calibration(scorer.save, link), saved_spec, meta)
    return TrainOutcome(SavedModel(model_spec.model_type, spec.model.name, path, meta), metrics)


def load_scorer(saved: SavedModel) -> Scorer:
    """Rebuild the fitted scorer of a saved model."""
    return scorer_class(saved.model_type).load(saved.path)


def _initial_scorer(spec: TrainingSpec, store: ModelStore) -> tuple[Scorer, ModelSpecBase, str | None]:
    if spec.model.spec is not None:
        return scorer_class(spec.model.spec.model_type)(spec.model.spec), spec.model.spec, None
    parent = store.resolve(spec.model.start_state or "")
    model_spec = MODEL_SPECS[parent.model_type].model_validate(parent.spec()["model"]["spec"])
    log.info("continuing from %s", parent.ref)
    return load_scorer(parent), model_spec, parent.ref


def _checkpointer(spec: TrainingSpec, model_spec: ModelSpecBase, store: ModelStore) -> Any:
    def checkpoint(scorer: Scorer, epoch: int) -> None:
        saved_spec = spec.model_dump(mode="json", by_alias=True, exclude={"schema_ref"})
        saved_spec["model"]["spec"] = model_spec.model_dump(mode="json")
        meta = {"model_type": model_spec.model_type, "name": f"{spec.model.name}@ep{epoch}", "epoch": epoch,
                "created": _now(), "checkpoint_of": spec.model.name}
        store.save(model_spec.model_type, f"{spec.model.name}@ep{epoch}", scorer.save, saved_spec, meta)

    return checkpoint


def _metrics(scorer: Scorer, split: Split) -> dict[str, Any]:
    train_acc, n_train = evaluate_accuracy(scorer, split.train)
    val_acc, n_val = evaluate_accuracy(scorer, split.validation)
    return {
        "train_accuracy": train_acc,
        "validation_accuracy": val_acc,
        "n_train_battles": len(split.train),
        "n_validation_battles": len(split.validation),
        "n_train_decisive": n_train,
        "n_validation_decisive": n_val,
    }


def _meta(
    spec: TrainingSpec, model_spec: ModelSpecBase, split: Split, metrics: dict[str, Any], parent: str | None
) -> dict[str, Any]:
    return {
        "model_type": model_spec.model_type,
        "name": spec.model.name,
        "created": _now(),
        "metrics": metrics,
        "models": list(split.train.models),
        "data": {
            "source": spec.data.paths or spec.data.dataset,
            "train_fingerprint": fingerprint(split.train.records),
            "validation_fingerprint": fingerprint(split.validation.records),
        },
        "start_state": parent,
        "versions": {"python": platform.python_version()} | _versions(),
    }


def _versions() -> dict[str, str]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

