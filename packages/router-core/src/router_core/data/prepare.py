"""Deterministic down-sampling, filtering and the prompt-grouped train/validation split."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from router_core.data.types import Battle, Battles
from router_core.errors import DataError

log = logging.getLogger(__name__)


def downsample(battles: Sequence[Battle], max_samples: int | None, seed: int) -> list[Battle]:
    """At most `max_samples` battles drawn without replacement by `seed`, kept in source order."""
    if max_samples is None or max_samples >= len(battles):
        if max_samples is not None and max_samples > len(battles):
            log.warning("max_samples=%d but only %d battles exist; using all of them", max_samples, len(battles))
        return list(battles)
    keep = np.sort(np.random.default_rng(seed).choice(len(battles), size=max_samples, replace=False))
    return [battles[i] for i in keep]


def drop_rare_models(battles: Sequence[Battle], min_occurrences: int) -> list[Battle]:
    """Battles whose two models each appear at least `min_occurrences` times (either side, any outcome)."""
    counts = Counter(m for b in battles for m in (b.model_a, b.model_b))
    kept = [b for b in battles if min(counts[b.model_a], counts[b.model_b]) >= min_occurrences]
    rare = sorted(m for m, c in counts.items() if c < min_occurrences)
    if rare:
        log.info("dropped %d battles of %d models seen fewer than %d times", len(battles) - len(kept), len(rare), min_occurrences)
    return kept


def drop_without_prompt(battles: Sequence[Battle], quiet: bool = False) -> list[Battle]:
    """Battles that have prompt text (prompt-aware models cannot use the others)."""
    kept = [b for b in battles if b.prompt is not None and b.prompt.strip()]
    if len(kept) < len(battles) and not quiet:
        log.warning("dropped %d of %d battles without prompt text", len(battles) - len(kept), len(battles))
    return kept


def group_key(battle: Battle) -> str:
    """What must not straddle the split: the prompt text, else the battle id (e.g. a question_id)."""
    if battle.prompt is not None:
        return "p:" + battle.prompt.strip()
    return "i:" + (battle.id or f"{battle.model_a}|{battle.model_b}|{battle.timestamp}")


@dataclass(frozen=True)
class Split:
    """Training, validation and selection battles, never sharing a prompt (validation and selection may be empty).

    Models are fitted on `train`; whatever is chosen from data (best epoch, alpha, calibration) is chosen on
    `selection`; `validation` is only measured.
    """

    train: Battles
    validation: Battles
    selection: Battles = field(default_factory=lambda: Battles.from_records([]))

    def prompted(self) -> Split:
        """The same split with only the battles that have prompt text (what prompt-aware scorers read)."""
        return Split(*(Battles.from_records(drop_without_prompt(part.records, quiet=True))
                       for part in (self.train, self.validation, self.selection)))  # fmt: skip


def grouped_split(battles: Sequence[Battle], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of train and validation battles; a prompt is never on both sides.

    Groups are ordered by a seeded permutation of their sorted keys (so the result does not depend on row
    order) and taken into validation until about `fraction` of the battles are there.
    """
    keys = [group_key(b) for b in battles]
    unique, inverse, sizes = np.unique(np.array(keys, dtype=object), return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(unique))
    filled = np.cumsum(sizes[order])
    n_val_groups = int(np.searchsorted(filled, fraction * len(battles), side="left"))
    val_groups = np.zeros(len(unique), dtype=bool)
    val_groups[order[:n_val_groups]] = True
    in_val = val_groups[inverse]
    return np.flatnonzero(~in_val), np.flatnonzero(in_val)


def grouped_folds(battles: Sequence[Battle], k: int, seed: int) -> np.ndarray:
    """Fold number in [0, k) of every battle, for k-fold cross-validation: all battles of one prompt share a fold.

    Groups are dealt to folds in turn, in a seeded permutation of their sorted keys (so the result does not depend
    on row order); each fold gets k's share of the prompts, not of the battles.
    """
    if k < 2:
        raise ValueError(f"k-fold cross-validation needs k >= 2, not {k}")
    keys = np.array([group_key(b) for b in battles], dtype=object)
    unique, inverse = np.unique(keys, return_inverse=True)
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of_group = np.empty(len(unique), dtype=np.int64)
    fold_of_group[order] = np.arange(len(unique)) % k
    return fold_of_group[inverse]


def split_battles(battles: Sequence[Battle], fraction: float, seed: int, selection_fraction: float = 0.0) -> Split:
    """Validation battles by `grouped_split`, then `selection_fraction` of the rest as selection battles (grouped
    by prompt too, with the seed `seed + 1`); an error when no training battle would be left."""
    if len(battles) < 2:
        raise DataError(f"only {len(battles)} battles left after filtering; nothing to train and validate on")
    records = list(battles)
    rest_idx, val_idx = grouped_split(records, fraction, seed)
    if len(rest_idx) == 0:
        raise DataError("the validation split took every battle; lower data.validation_split")
    if len(val_idx) == 0 and fraction > 0:
        log.warning("validation split is empty (too few distinct prompts for %.2f); validating on nothing", fraction)
    rest = [records[i] for i in rest_idx]
    train_idx, sel_idx = grouped_split(rest, selection_fraction, seed + 1)
    if len(train_idx) == 0:
        raise DataError("the selection split took every training battle; lower data.selection_split")
    if len(sel_idx) == 0 and selection_fraction > 0:
        log.warning("selection split is empty (too few distinct prompts for %.2f); choosing on the training battles",
                    selection_fraction)  # fmt: skip
    split = Split(Battles.from_records(rest[i] for i in train_idx), Battles.from_records(records[i] for i in val_idx),
                  Battles.from_records(rest[i] for i in sel_idx))  # fmt: skip
    check_learnable(split.train)
    return split


def check_learnable(train: Battles) -> None:
    """A `DataError` unless the training battles hold at least one decisive vote (what every model type learns from)."""
    if len(train) and not train.decisive.any():
        outcomes = ", ".join(f"{n} {w}" for w, n in train.outcome_counts().items() if n)
        raise DataError(
            f"the {len(train)} training battles hold no decisive vote ({outcomes}): there is nothing to learn from"
        )


def fingerprint(battles: Sequence[Battle]) -> str:
    """Short SHA-256 over what training reads (models, winner, prompt), in order."""
    digest = hashlib.sha256()
    for b in battles:
        digest.update(f"{b.model_a}\x1f{b.model_b}\x1f{b.winner}\x1f{b.prompt or ''}\x1e".encode())
    return digest.hexdigest()[:16]
