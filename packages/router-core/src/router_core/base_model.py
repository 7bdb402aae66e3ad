"""A prompt-agnostic base under a prompt-aware scorer: its per-model scores, and the fitted weight `alpha` of
the prompt-dependent residual.

score(p, m) = base(m) + alpha * r(p, m), base on the log-odds scale (P(a beats b) = sigmoid(base_a - base_b)
for the base alone). `alpha` is fitted on the decisive selection battles over [0, 1]: the log-loss minimiser,
kept only when it beats the base alone by more than two paired standard errors, else 0, so that weak evidence (a
small or noisy selection set) leaves the model at its base. 0 means the residual adds nothing. The selection
battles are halved by prompt (`selection_halves`): one half chooses the epoch, the other fits alpha.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from router_core.data.prepare import grouped_split
from router_core.data.types import Battles
from router_core.errors import DataError

GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass(frozen=True)
class BaseScores:
    """Per-model scores of a prompt-agnostic base, scaled to log-odds; `source` says where they came from."""

    models: tuple[str, ...]
    scores: np.ndarray
    """(n_models,) float64, finite."""
    source: str
    """`TYPE/NAME` of a saved base, or `inline <model_type>` for one fitted in the same run."""

    def __post_init__(self) -> None:
        if self.scores.shape != (len(self.models),) or not np.isfinite(self.scores).all():
            raise DataError(f"base model {self.source}: expected one finite score per model")

    def for_models(self, models: Sequence[str]) -> np.ndarray:
        """Scores of `models` (n,), float64; a model the base never saw gets the mean of the known scores."""
        index = {m: i for i, m in enumerate(self.models)}
        fill = float(self.scores.mean()) if len(self.scores) else 0.0
        return np.array([self.scores[index[m]] if m in index else fill for m in models], dtype=np.float64)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (for a scorer's state file)."""
        return {"models": list(self.models), "scores": self.scores.tolist(), "source": self.source}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BaseScores:
        """Inverse of `to_json`."""
        return cls(tuple(data["models"]), np.asarray(data["scores"], dtype=np.float64), str(data["source"]))


@runtime_checkable
class ResidualScorer(Protocol):
    """A scorer that may score over a base: base(m) + alpha_ * r(p, m), on the log-odds scale when `base_` is set."""

    base_: BaseScores | None
    alpha_: float


def selection_halves(selection: Battles, seed: int) -> tuple[Battles, Battles]:
    """The selection battles of a scorer over a base, split in two by prompt: (the half that chooses the epoch or
    boosting round, the half that fits alpha).

    The residual kept is the one that did best on the first half, so judging it on those battles again would pass
    noise as a gain (measured: with one slice for both, alpha was above 0 in 4-5 of 25 cross-validation folds where
    the prompt added nothing, and those folds raised the held-out log-loss). Halves of about the same number of
    battles (`grouped_split`, seeded, independent of row order); with fewer than two prompts both are the whole.
    """
    choose, fit = grouped_split(selection.records, 0.5, seed)
    if len(choose) == 0 or len(fit) == 0:
        return selection, selection
    return selection.subset(choose), selection.subset(fit)


def _losses(alpha: float, base_diff: np.ndarray, residual_diff: np.ndarray, a_won: np.ndarray) -> np.ndarray:
    z = base_diff + alpha * residual_diff
    return np.logaddexp(0.0, np.where(a_won, -z, z))


def residual_log_loss(alpha: float, base_diff: np.ndarray, residual_diff: np.ndarray, a_won: np.ndarray) -> float:
    """Mean log-loss of P(A beats B) = sigmoid(base_diff + alpha * residual_diff) on decisive battles."""
    return float(np.mean(_losses(alpha, base_diff, residual_diff, a_won)))


GATE_STANDARD_ERRORS = 2.0
"""How many paired standard errors the residual must beat the base alone by, on the alpha half, to be kept. With no
prompt signal a gate of z standard errors still opens with probability about P(Z > z): 16% for one (measured: 3-6
of 25 cross-validation folds per data set, each raising the held-out log-loss), 2% for two."""


def fit_alpha(base_diff: np.ndarray, residual_diff: np.ndarray, a_won: np.ndarray, rule: str = "gated",
              standard_errors: float = GATE_STANDARD_ERRORS, tol: float = 1e-7) -> float:  # fmt: skip
    """alpha in [0, 1] for base + alpha * residual on decisive battles.

    `rule="min"`: the minimiser of `residual_log_loss` (golden-section search: the loss is convex in alpha).
    `rule="gated"` (what training uses): the minimiser, unless the base alone (alpha 0) is worse than it by no more
    than `standard_errors` standard errors of the paired mean difference of per-battle log-losses: then 0 (the
    residual's gain is within noise).

    Args:
        base_diff: (n,) base_A - base_B of decisive selection battles.
        residual_diff: (n,) r_A - r_B of the same battles.
        a_won: (n,) bool, A won.
        rule: "gated" or "min".
        standard_errors: the gate's width (rule "gated").
    Returns 1.0 when there is no battle to fit on (nothing to choose with; the caller says so).
    """
    if rule not in ("gated", "min"):
        raise ValueError(f"rule must be gated or min, not {rule!r}")
    if base_diff.size == 0:
        return 1.0
    a_won = np.asarray(a_won, dtype=bool)
    best = _minimise(base_diff, residual_diff, a_won, tol)
    if rule == "min" or base_diff.size < 2 or best == 0.0:
        return best
    excess = _losses(0.0, base_diff, residual_diff, a_won) - _losses(best, base_diff, residual_diff, a_won)
    gate = standard_errors * float(excess.std(ddof=1)) / np.sqrt(excess.size)
    return 0.0 if float(excess.mean()) <= gate else best


def _minimise(base_diff: np.ndarray, residual_diff: np.ndarray, a_won: np.ndarray, tol: float) -> float:
    """The minimiser of `residual_log_loss` over [0, 1]."""

    def loss(alpha: float) -> float:
        return residual_log_loss(alpha, base_diff, residual_diff, a_won)

    lo, hi = 0.0, 1.0
    x1, x2 = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
    f1, f2 = loss(x1), loss(x2)
    while hi - lo > tol:
        if f1 <= f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - GOLDEN * (hi - lo)
            f1 = loss(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + GOLDEN * (hi - lo)
            f2 = loss(x2)
    best = (lo + hi) / 2
    # The minimum may sit on a bound; golden section only gets within tol of it.
    return min((0.0, best, 1.0), key=lambda a: (loss(a), a != best))
