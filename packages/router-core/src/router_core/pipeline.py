"""A whole training run from a `TrainingSpec`: load data, filter, split, fit, measure, save.

The split has three parts, none sharing a prompt: the model is fitted on `train`; what is chosen from data (best
epoch, a base model's alpha, the calibration link) is chosen on `selection`; `validation` is only measured, so
its figures are honest held-out ones. The CLI's `train` is a thin wrapper around `train_from_spec`.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np

from router_core import distributed
from router_core.base_model import BaseScores, ResidualScorer
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
from router_core.errors import DataError, UserError
from router_core.evaluation import LogisticLink, OutcomeModel, calibrate, native_log_odds_coef, with_calibration
from router_core.length import METRICS as LENGTH_METRICS
from router_core.length import LengthPredictor, evaluate_lengths
from router_core.metrics import pairwise_accuracy
from router_core.plotting import PLOT_FILE, save_history_plot
from router_core.registry import scorer_class
from router_core.scorer import RunConfig, Scorer, TrainHooks
from router_core.scoring import battle_scores
from router_core.specs import MODEL_SPECS, ModelSpecBase, TrainingSpec
from router_core.specs._base_model import BaseModelFields
from router_core.store import ModelStore, SavedModel, reading_model_files
from router_core.versions import package_versions
from router_core.wandb_log import WandbRun

log = logging.getLogger(__name__)
Model = Scorer | LengthPredictor
"""What a model type trains: a scorer, or a length predictor when its spec's `task` is "length"."""
FittedT = TypeVar("FittedT", bound=Model)
_PACKAGES = ("router-core", "router-classic", "router-neural", "router-runtime", "router-cli", "numpy", "torch")


@dataclass(frozen=True)
class TrainOutcome:
    """What a training run produced: the saved model, its metrics and the split it was trained and measured on."""

    saved: SavedModel
    metrics: dict[str, Any]
    split: Split
    rank: int = 0
    """The process that returned it. Under torchrun only rank 0 saves and measures; on the other ranks `saved` names
    the model rank 0 wrote (its path may be on another machine) and `metrics` is empty."""


def _inline_base(model_spec: ModelSpecBase) -> ModelSpecBase | None:
    base = model_spec.base_model if isinstance(model_spec, BaseModelFields) else None
    return base if isinstance(base, ModelSpecBase) else None


def prepare_split(records: list[Battle], spec: TrainingSpec, model_spec: ModelSpecBase) -> Split:
    """Down-sample, filter for this model type, and split grouped by prompt; a clear error when nothing is left.

    Battles without prompt text are dropped for prompt-aware types, unless an inline base model (which is fitted
    on every training battle) can use them; `Split.prompted()` is then what the prompt-aware scorer reads.
    """
    battles = downsample(records, spec.data.max_samples, spec.data.seed)
    if model_spec.prompt_aware:
        prompted = drop_without_prompt(battles, quiet=_inline_base(model_spec) is not None)
        if len(prompted) < 2:
            raise DataError(f"{model_spec.model_type} reads prompt text, and only {len(prompted)} of the battles have "
                            "any; use data with prompts (data.path / data.dataset) or a prompt-agnostic model type")  # fmt: skip
        if _inline_base(model_spec) is None:
            battles = prompted
    kept = drop_rare_models(battles, model_spec.min_model_occurrences)
    if len(kept) < 2:
        raise DataError(_too_rare_message(battles, len(kept), model_spec))
    split = split_battles(kept, spec.data.validation_split, spec.data.seed, spec.data.selection_split)
    if model_spec.prompt_aware and len(split.prompted().train) < 2:
        raise DataError(f"only {len(split.prompted().train)} training battles with prompt text are left after the "
                        "splits; use more data with prompts")  # fmt: skip
    return split


def _too_rare_message(battles: list[Battle], n_kept: int, model_spec: ModelSpecBase) -> str:
    counts = Counter(m for b in battles for m in (b.model_a, b.model_b)).most_common()
    shown = ", ".join(f"{m} {c}" for m, c in counts[:8]) + (f", ... ({len(counts)} models)" if len(counts) > 8 else "")
    return (f"only {n_kept} of {len(battles)} battles left after dropping models seen fewer than "
            f"model.spec.min_model_occurrences = {model_spec.min_model_occurrences} times (appearances per model: "
            f"{shown or 'no battles at all'}); lower model.spec.min_model_occurrences or use more data")


def evaluate_accuracy(scorer: Scorer, battles: Battles) -> tuple[float, int]:
    """Pairwise accuracy of a fitted scorer on battles (ties excluded, equal scores wrong)."""
    score_a, score_b = battle_scores(scorer, battles)
    return pairwise_accuracy(score_a, score_b, battles.winner)


def train_from_spec(spec: TrainingSpec, store: ModelStore, hooks: TrainHooks | None = None) -> TrainOutcome:
    """Run the training the spec describes and save the model under `model.name`.

    Saved-model references in the spec are resolved here, in `store`, before any data is read; so is the
    scorer's `preflight` (an embedding model that cannot be loaded fails before the data is read).

    Under torchrun (router_core.distributed) every rank trains; only rank 0 logs, checkpoints, writes the model
    and talks to W&B, and the other ranks wait for its save before they return.
    """
    hooks = hooks or TrainHooks()
    main = distributed.is_main_process()
    if not main:
        hooks = replace(hooks, log=_silent, progress=False, checkpoint=None, metrics=None)
    scorer, model_spec, parent = _initial_scorer(spec, store)
    saved_refs = {name: store.resolve(ref) for name, ref in model_spec.references().items()}
    if (base_ref := saved_refs.get("base_model")) is not None and MODEL_SPECS[base_ref.model_type].prompt_aware:
        raise UserError(f"model.spec.base_model {base_ref.ref} is prompt-aware; a base must be a prompt-agnostic "
                        "model (bradley_terry_scoring, elo_scoring, ...)")  # fmt: skip
    references = {name: saved.path for name, saved in saved_refs.items()}
    scorer.preflight()
    full_split = prepare_split(load_battles(spec.data), spec, model_spec)
    split = scorer_split(model_spec, full_split)
    run = RunConfig.from_spec(spec, resume=parent is not None, references=references)
    wandb = WandbRun(spec.wandb if main else None,
                     {"spec": spec.model_dump(mode="json", by_alias=True, exclude={"schema_ref"})}, hooks.log)  # fmt: skip
    saver = _Saver(spec, model_spec, split, store, parent)
    hooks = replace(hooks, checkpoint=saver.checkpoint if spec.save_every and main else None,
                    metrics=wandb.log if wandb.active else hooks.metrics)  # fmt: skip
    fit_on_split(scorer, model_spec, full_split, run, hooks, saved_refs.get("base_model"))
    if not main:
        distributed.barrier()  # rank 0 is saving
        where = SavedModel(model_spec.model_type, spec.model.name, store.path(model_spec.model_type, spec.model.name), {})
        return TrainOutcome(where, {}, split, distributed.rank())
    saved, metrics = saver.save(scorer, spec.model.name)
    distributed.barrier()  # the other ranks may return now
    if wandb.active:
        wandb.log({f"final/{k}": v for k, v in metrics.items() if isinstance(v, float)}, step=len(scorer.history_) + 1)
    wandb.finish(saved.path)
    return TrainOutcome(saved, metrics, split)


def scorer_split(model_spec: ModelSpecBase, split: Split) -> Split:
    """The part of `prepare_split`'s split that the scorer reads (prompt-aware types: battles with prompt text)."""
    return split.prompted() if model_spec.prompt_aware else split


def fit_on_split(scorer: FittedT, model_spec: ModelSpecBase, split: Split, run: RunConfig, hooks: TrainHooks,
                 saved_base: SavedModel | None = None) -> FittedT:  # fmt: skip
    """Fit `scorer` on `prepare_split`'s split: its base model first (unless resuming: a resumed model keeps the
    base it was trained over), then the scorer on `scorer_split`'s training battles, choosing on its selection
    battles. Validation battles are not touched. Returns the scorer."""
    part = scorer_split(model_spec, split)
    log.info("training %s on %d battles, choosing on %d, validating on %d", model_spec.model_type, len(part.train),
             len(part.selection), len(part.validation))  # fmt: skip
    if not run.resume:
        run = replace(run, base=_base_scores(model_spec, split, saved_base, run, hooks))
    scorer.fit(part.train, part.selection, run, hooks)  # returns self
    return scorer


def calibration_link(scorer: Scorer, split: Split, seed: int = 0) -> LogisticLink | None:
    """The logistic link P(a beats b) = sigmoid(coef * (s_a - s_b)) of a fitted scorer, fitted on the battles
    things are chosen on (`split` as the scorer read it).

    A scorer over a base model is not refitted: its scores are log-odds already (the base's, plus alpha times a
    residual trained on that scale, alpha chosen on the same battles), so its coef is 1 and with alpha 0 its
    probabilities are the base's own. A second scale fitted on the few selection battles only added noise.
    """
    over_base = isinstance(scorer, ResidualScorer) and scorer.base_ is not None
    return calibrate(scorer, _choosing_battles(split), seed=seed, coef=1.0 if over_base else None)


def _base_scores(model_spec: ModelSpecBase, split: Split, saved: SavedModel | None, run: RunConfig,
                 hooks: TrainHooks) -> BaseScores | None:  # fmt: skip
    """The base model's per-model scores on the log-odds scale: a saved base or an inline one fitted on every
    training battle. A base with its own probabilities (Bradley-Terry) is on its own scale (`native_log_odds_coef`,
    exactly 1 for Bradley-Terry); another is scaled by a logistic link: a saved base's own, an inline base's fitted
    on the training battles it was fitted on."""
    if saved is not None:
        base, source = load_scorer(saved), saved.ref
    elif (inline := _inline_base(model_spec)) is not None:
        hooks.log(f"fitting the base model ({inline.model_type}) on {len(split.train)} training battles")
        base = scorer_class(inline.model_type)(inline)
        base.preflight()
        base.fit(split.train, split.selection, replace(run, references={}), replace(hooks, checkpoint=None, metrics=None))
        source = f"inline {inline.model_type}"
    else:
        return None
    models = list(base.known_models)
    raw = np.asarray(base.score([""], models)[0], dtype=np.float64)
    if isinstance(base, OutcomeModel):
        coef = native_log_odds_coef(base, models, raw)
    else:
        link = LogisticLink.load(saved.path) if saved is not None else calibrate(base, split.train, seed=run.seed)
        coef = link.coef if link is not None else 1.0
    return BaseScores(tuple(models), raw * coef, source)


def _choosing_battles(split: Split) -> Battles:
    """The battles things are chosen on: the selection battles, or the training ones when there is no decisive
    selection battle (data.selection_split 0)."""
    return split.selection if split.selection.decisive.any() else split.train


def _silent(message: str) -> None:
    """The log of ranks other than 0."""


def load_model(saved: SavedModel) -> Model:
    """Rebuild the fitted scorer or length predictor of a saved model from its state files and its spec.json."""
    with reading_model_files(saved.path):  # a damaged state file is a DataError naming the model (issue 12)
        model_spec = MODEL_SPECS[saved.model_type].model_validate(saved.spec()["model"]["spec"])
        return scorer_class(saved.model_type).load(saved.path, model_spec)


def model_task(model_type: str) -> str:
    """"score" or "length": what models of `model_type` predict (the spec's `task`)."""
    return MODEL_SPECS[model_type].task


def load_scorer(saved: SavedModel) -> Scorer:
    """The fitted scorer of a saved model; a `UserError` when the model predicts lengths instead."""
    if model_task(saved.model_type) != "score":
        raise UserError(f"{saved.ref} is a length model: it predicts answer lengths in tokens, not scores "
                        "(use it with router-cli infer or evaluate)")  # fmt: skip
    return cast(Scorer, load_model(saved))


def load_length_predictor(saved: SavedModel) -> LengthPredictor:
    """The fitted length predictor of a saved model; a `UserError` when the model is a scorer."""
    if model_task(saved.model_type) != "length":
        raise UserError(f"{saved.ref} is a scorer, not a length model")
    return cast(LengthPredictor, load_model(saved))


def _initial_scorer(spec: TrainingSpec, store: ModelStore) -> tuple[Model, ModelSpecBase, str | None]:
    if spec.model.start_state is None:
        assert spec.model.spec is not None  # the spec validator guarantees one of them
        return scorer_class(spec.model.spec.model_type)(spec.model.spec), spec.model.spec, None
    parent = store.resolve(spec.model.start_state)
    log.info("continuing from %s", parent.ref)
    scorer = load_model(parent)
    return scorer, scorer.spec, parent.ref


class _Saver:
    """Writes a fitted scorer as a complete model directory; the final model and every checkpoint alike."""

    def __init__(self, spec: TrainingSpec, model_spec: ModelSpecBase, split: Split, store: ModelStore,
                 parent: str | None) -> None:  # fmt: skip
        self.spec, self.model_spec, self.split, self.store, self.parent = spec, model_spec, split, store, parent

    def save(self, scorer: Model, name: str, extra_meta: dict[str, Any] | None = None) -> tuple[SavedModel, dict[str, Any]]:
        """Calibrate, measure and save `scorer` as `name`: state, calibration.json, training plot, spec, meta."""
        link, metrics = _measure(scorer, self.split, self.spec.data.seed)
        meta = (_meta(self.spec, self.model_spec, self.split, metrics, self.parent)
                | {"name": name, "fit": scorer.report()} | (extra_meta or {}))  # fmt: skip
        saved_spec = self.spec.model_dump(mode="json", by_alias=True, exclude={"schema_ref"})
        saved_spec["model"]["spec"] = self.model_spec.model_dump(mode="json")
        saved_spec["model"]["name"] = name

        def write(directory: Path) -> None:
            with_calibration(scorer.save, link)(directory)
            save_history_plot(scorer.history_, directory / PLOT_FILE, title=f"{self.model_spec.model_type}/{name}")

        path = self.store.save(self.model_spec.model_type, name, write, saved_spec, meta)
        return SavedModel(self.model_spec.model_type, name, path, meta), metrics

    def checkpoint(self, scorer: Model, epoch: int) -> None:
        """Save the scorer as it is after `epoch` as `<name>@ep<epoch>`, a loadable model like the final one."""
        self.save(scorer, f"{self.spec.model.name}@ep{epoch}", {"epoch": epoch, "checkpoint_of": self.spec.model.name})


def _measure(model: Model, split: Split, seed: int) -> tuple[LogisticLink | None, dict[str, Any]]:
    """The calibration (scorers: P(a beats b) for score-only models) and the metrics of a fitted model, by task."""
    if model.spec.task == "length":
        return None, _length_metrics(cast(LengthPredictor, model), split)
    scorer = cast(Scorer, model)
    return calibration_link(scorer, split, seed=seed), _metrics(scorer, split)


def _length_metrics(predictor: LengthPredictor, split: Split) -> dict[str, Any]:
    """Length metrics on the train and validation answers, and the per-model median baseline's on validation."""
    out: dict[str, Any] = {"tokenizer": predictor.tokenizer, "n_train_battles": len(split.train),
                           "n_validation_battles": len(split.validation)}  # fmt: skip
    for name, battles in (("train", split.train), ("validation", split.validation)):
        result = evaluate_lengths(predictor, battles)
        out[f"n_{name}_answers"] = result["n_samples"]
        for metric in LENGTH_METRICS:
            out[f"{name}_{metric}"] = result[metric]
            if name == "validation":
                out[f"validation_baseline_{metric}"] = result["baseline"][metric]
    return out


def _metrics(scorer: Scorer, split: Split) -> dict[str, Any]:
    train_acc, n_train = evaluate_accuracy(scorer, split.train)
    val_acc, n_val = evaluate_accuracy(scorer, split.validation) if len(split.validation) else (float("nan"), 0)
    return {
        "train_accuracy": train_acc,
        "validation_accuracy": None if n_val == 0 else val_acc,
        "n_train_battles": len(split.train),
        "n_selection_battles": len(split.selection),
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
            "selection_fingerprint": fingerprint(split.selection.records),
        },
        "start_state": parent,
        "versions": package_versions(_PACKAGES),
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

