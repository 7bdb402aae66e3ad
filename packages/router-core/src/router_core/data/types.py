"""The canonical battle record and its columnar form `Battles` (what scorers train on)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numpy as np

Winner = Literal["model_a", "model_b", "tie", "both_bad"]
WINNERS: tuple[Winner, ...] = ("model_a", "model_b", "tie", "both_bad")
"""Winner labels; their index is the int code stored in `Battles.winner`."""
A_WINS, B_WINS, TIE, BOTH_BAD = 0, 1, 2, 3


@dataclass(frozen=True)
class Battle:
    """One human vote between two models' answers to the same prompt."""

    model_a: str
    model_b: str
    winner: Winner
    id: str = ""
    prompt: str | None = None
    """Last user turn (the one both answers reply to); None when the source has no prompt text."""
    history: tuple[tuple[str, str], ...] = ()
    """Earlier conversation turns as (role, text) pairs, oldest first."""
    response_a: str | None = None
    response_b: str | None = None
    categories: tuple[str, ...] = ()
    language: str | None = None
    timestamp: str | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.model_a == self.model_b:  # a model against itself says nothing about which model is better
            raise ValueError("self-battle (model_a == model_b)")

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form (the canonical JSONL row)."""
        row = {f.name: getattr(self, f.name) for f in fields(self)}
        row["history"] = [list(turn) for turn in self.history]
        row["categories"] = list(self.categories)
        return row


@dataclass
class Battles:
    """Columnar battles: model names as int codes into `models`, winners as int codes into `WINNERS`."""

    models: tuple[str, ...]
    model_a: np.ndarray  # (n,) int32 index into models
    model_b: np.ndarray  # (n,) int32
    winner: np.ndarray  # (n,) int8 code into WINNERS
    records: list[Battle] = field(repr=False)

    @classmethod
    def from_records(cls, records: Iterable[Battle]) -> Battles:
        """Encode records; model codes follow first appearance (A then B side)."""
        records = list(records)
        index: dict[str, int] = {}
        for r in records:
            index.setdefault(r.model_a, len(index))
            index.setdefault(r.model_b, len(index))
        code = {w: i for i, w in enumerate(WINNERS)}
        return cls(
            models=tuple(index),
            model_a=np.fromiter((index[r.model_a] for r in records), np.int32, len(records)),
            model_b=np.fromiter((index[r.model_b] for r in records), np.int32, len(records)),
            winner=np.fromiter((code[r.winner] for r in records), np.int8, len(records)),
            records=records,
        )

    def __len__(self) -> int:
        return len(self.records)

    def subset(self, indices: Sequence[int] | np.ndarray) -> Battles:
        """The battles at `indices` (re-encoded, so `models` lists only models still present)."""
        return Battles.from_records(self.records[int(i)] for i in indices)

    @property
    def prompts(self) -> list[str | None]:
        """Prompt of every battle, None where unknown."""
        return [r.prompt for r in self.records]

    @property
    def decisive(self) -> np.ndarray:
        """Mask of battles with a winner (not tie, not both_bad)."""
        return self.winner <= B_WINS

    def model_counts(self) -> np.ndarray:
        """Appearances of every model (either side, any outcome), shape (n_models,)."""
        k = len(self.models)
        return np.bincount(self.model_a, minlength=k) + np.bincount(self.model_b, minlength=k)

    def outcome_counts(self) -> dict[str, int]:
        """Number of battles per winner label."""
        counts = np.bincount(self.winner, minlength=len(WINNERS))
        return {w: int(c) for w, c in zip(WINNERS, counts, strict=True)}
