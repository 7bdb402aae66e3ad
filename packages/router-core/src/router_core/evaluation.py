"""Evaluating a fitted scorer on battles, and the calibrated logistic link of score-only models.

`evaluate(scorer, battles, link)` gives pairwise accuracy (with a bootstrap interval), log-loss and Brier score of
P(A beats B), tie log-loss for models with a tie model, and a per-category table. Models that only score get
P(A beats B) = sigmoid(coef * (s_A - s_B)), with `coef` fitted on training battles and stored next to the model
in `calibration.json`; models with their own outcome probabilities (`OutcomeModel`) use those.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from router_core.data.types import A_WINS, B_WINS, BOTH_BAD, TIE, Battles
from router_core.errors import DataError
from router_core.metrics import bootstrap_interval, brier_score, categorical_log_loss, log_loss, pairwise_accuracy
from router_core.scorer import Scorer
from router_core.scoring import battle_scores
from router_core.store import read_json_object

log = logging.getLogger(__name__)
CALIBRATION_FILE = "calibration.json"


@runtime_checkable
class OutcomeModel(Protocol):
    """A scorer that predicts outcome probabilities itself (e.g. Bradley-Terry with a tie model)."""

    def outcome_probabilities(self, prompts: Sequence[str], model_a: Sequence[str], model_b: Sequence[str]) -> np.ndarray:
        """P(A wins), P(B wins), P(tie) per battle, shape (n, 3); NaN rows for unknown models; tie column 0
        when the model has no tie model."""
        ...


@dataclass(frozen=True)
class LogisticLink:
    """P(A beats B) = sigmoid(coef * (s_A - s_B)), fitted on decisive training battles."""

    coef: float
    n_battles: int
    train_log_loss: float

    def probability(self, score_a: np.ndarray, score_b: np.ndarray) -> np.ndarray:
        """P(A beats B), shape like the inputs."""
        return 1.0 / (1.0 + np.exp(-self.coef * (score_a - score_b)))

    def save(self, directory: Path) -> None:
        """Write `calibration.json` into a model directory."""
        (directory / CALIBRATION_FILE).write_text(json.dumps({"logistic_link": asdict(self)}, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> LogisticLink | None:
        """The link saved with a model, or None for models saved without one."""
        path = directory / CALIBRATION_FILE
        if not path.is_file():
            return None
        link = read_json_object(path).get("logistic_link")
        kinds = {"coef": float, "n_battles": int, "train_log_loss": float}
        if not isinstance(link, dict) or set(link) != set(kinds):
            raise DataError(f"{path}: damaged calibration file (expected logistic_link with {', '.join(kinds)})")
        if not all(isinstance(link[k], int | float) and not isinstance(link[k], bool) for k in kinds):
            raise DataError(f"{path}: damaged calibration file (non-numeric {', '.join(kinds)})")
        if not np.isfinite(link["coef"]):
            raise DataError(f"{path}: damaged calibration file (coef is {link['coef']})")
        return cls(coef=float(link["coef"]), n_battles=int(link["n_battles"]), train_log_loss=float(link["train_log_loss"]))


def fit_logistic_link(diff: np.ndarray, a_won: np.ndarray, l2: float = 1e-4, max_iter: int = 100) -> LogisticLink:
    """Fit coef >= 0 minimising the mean log-loss of sigmoid(coef * diff) plus l2 / 2 * coef^2 (Newton, 1-D).

    The small ridge keeps coef finite when the training battles are perfectly separated by the scores.

    Args:
        diff: shape (n,), s_A - s_B of decisive battles.
        a_won: shape (n,), 1 where A won, 0 where B won.
        l2: ridge on coef.
        max_iter: Newton steps at most.
    """
    coef = 0.0
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-coef * diff))
        grad = float(np.mean((p - a_won) * diff)) + l2 * coef
        hess = float(np.mean(p * (1 - p) * diff**2)) + l2
        step = grad / hess
        coef = max(coef - step, 0.0)
        if abs(step) < 1e-10 * max(1.0, abs(coef)):
            break
    return link_at(coef, diff, a_won)


def link_at(coef: float, diff: np.ndarray, a_won: np.ndarray) -> LogisticLink:
    """The link with a given `coef` (not fitted), reporting its log-loss on the decisive battles given."""
    p = 1.0 / (1.0 + np.exp(-coef * diff))
    return LogisticLink(coef=float(coef), n_battles=int(diff.size), train_log_loss=log_loss(p, a_won))


def native_log_odds_coef(model: OutcomeModel, models: Sequence[str], scores: np.ndarray, max_models: int = 300) -> float:
    """The c with logit P(A beats B | someone won) ~= c * (s_A - s_B) for a model with its own probabilities.

    Read off the model itself over every pair of (at most `max_models` of) its models, by least squares through
    the origin: no battle is used. Bradley-Terry with the Davidson tie model (or none) gives exactly 1; a
    Rao-Kupper tie model its closest constant.
    """
    keep = np.arange(min(len(models), max_models))
    i, j = np.triu_indices(keep.size, k=1)
    if i.size == 0:
        return 1.0
    names = [str(models[k]) for k in range(keep.size)]
    model_a = [names[k] for k in i.tolist()]
    model_b = [names[k] for k in j.tolist()]
    probs = np.asarray(model.outcome_probabilities([""] * i.size, model_a, model_b))
    diff = scores[i] - scores[j]
    logit = np.log(probs[:, 0]) - np.log(probs[:, 1])
    ok = np.isfinite(logit) & np.isfinite(diff)
    denominator = float(np.sum(diff[ok] ** 2))
    return float(np.sum(logit[ok] * diff[ok]) / denominator) if denominator > 0 else 1.0


def calibrate(scorer: Scorer, battles: Battles, max_battles: int = 20_000, seed: int = 0,
              coef: float | None = None) -> LogisticLink | None:  # fmt: skip
    """The logistic link of a fitted scorer on (at most `max_battles` of) its decisive training battles.

    With `coef` the link is not fitted: it is `coef`, with its log-loss on these battles (for scores that are
    log-odds already). Returns None when there is no decisive battle between known models to fit it on.
    """
    decisive = np.flatnonzero(battles.decisive)
    if decisive.size > max_battles:
        decisive = np.sort(np.random.default_rng(seed).choice(decisive, max_battles, replace=False))
    if decisive.size == 0:
        return None
    sample = battles.subset(decisive)
    score_a, score_b = battle_scores(scorer, sample)
    known = np.isfinite(score_a) & np.isfinite(score_b)
    if not known.any():
        return None
    diff, a_won = (score_a - score_b)[known], (sample.winner[known] == A_WINS).astype(np.float64)
    return fit_logistic_link(diff, a_won) if coef is None else link_at(coef, diff, a_won)


def with_calibration(write_state: Callable[[Path], None], link: LogisticLink | None) -> Callable[[Path], None]:
    """`write_state` that also writes the link (for `ModelStore.save`)."""

    def write(directory: Path) -> None:
        write_state(directory)
        if link is not None:
            link.save(directory)

    return write


def evaluate(
    scorer: Scorer,
    battles: Battles,
    link: LogisticLink | None = None,
    bootstrap_rounds: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    batch_size: int = 128,
    progress: bool = True,
    prompt_sensitivity: bool = False,
) -> dict[str, Any]:
    """Metrics of a fitted scorer on battles (see docs/evaluation.md for each definition).

    Battles with a model the scorer never saw are skipped (`n_skipped`). Accuracy and the probability metrics
    use the decisive battles among the rest (`n_pairs`); `tie_log_loss` uses all of the rest, a both_bad vote
    counting as a tie. `all_pairs` scores every decisive battle, unknown models getting the fallback `infer`
    applies, and `coverage` is the share of decisive battles whose two models are known. With
    `prompt_sensitivity`, the battles are scored again with their prompts shuffled among themselves (seeded)
    and the accuracy drop and log-loss rise are reported: how much the model uses the prompt.
    """
    score_a, score_b = battle_scores(scorer, battles, batch_size)
    known = np.isfinite(score_a) & np.isfinite(score_b)
    probs = _outcome_probabilities(scorer, battles, score_a, score_b, link)
    result: dict[str, Any] = {
        **_block(score_a, score_b, battles.winner, known, probs, bootstrap_rounds, level, seed, progress),
        "n_battles": len(battles),
        "n_skipped": int((~known).sum()),
        "probabilities": "model" if isinstance(scorer, OutcomeModel) else "logistic_link" if link else None,
    }
    decisive = battles.winner <= B_WINS
    result["coverage"] = _num(float((known & decisive).sum() / decisive.sum())) if decisive.any() else None
    result["all_pairs"] = _all_pairs(scorer, battles, known, probs, link, batch_size)
    if prompt_sensitivity:
        result["prompt_sensitivity"] = _prompt_sensitivity(scorer, battles, result, link, seed, batch_size)
    if link is not None and not isinstance(scorer, OutcomeModel):
        result["link_coef"] = link.coef
    categories = _categories(battles)
    if any((known & mask).any() for mask in categories.values()):
        result["per_category"] = {
            name: _block(score_a, score_b, battles.winner, known & mask, probs, 0, level, seed)
            for name, mask in categories.items()
            if (known & mask).any()
        }
    return result


def _all_pairs(scorer: Scorer, battles: Battles, known: np.ndarray, probs: np.ndarray | None,
               link: LogisticLink | None, batch_size: int) -> dict[str, Any]:  # fmt: skip
    """Accuracy and log-loss on every decisive battle, unknown models scored by the `infer` fallback."""
    if known.all():
        filled_a, filled_b = battle_scores(scorer, battles, batch_size)
    else:
        filled_a, filled_b = battle_scores(scorer, battles, batch_size, fill_unknown=True)
    everything = np.isfinite(filled_a) & np.isfinite(filled_b)
    if probs is not None:
        # known pairs keep the model's own probabilities; a pair with an unknown model gets the link on the
        # filled scores (or 1/2 without a link)
        fallback = link.probability(filled_a, filled_b) if link is not None else np.full(len(battles), 0.5)
        probs = probs.copy()
        probs[~known] = np.stack([fallback, 1 - fallback, np.zeros_like(fallback)], axis=1)[~known]
    block = _block(filled_a, filled_b, battles.winner, everything, probs, 0, 0.95, 0)
    return {k: block[k] for k in ("pairwise_accuracy", "log_loss", "n_pairs")}


def _prompt_sensitivity(scorer: Scorer, battles: Battles, result: dict[str, Any], link: LogisticLink | None, seed: int,
                        batch_size: int) -> dict[str, Any]:  # fmt: skip
    """The metrics on known pairs with the battles' prompts permuted, and how much worse they are."""
    order = np.random.default_rng(seed).permutation(len(battles))
    prompts = [battles.records[int(i)].prompt for i in order]
    shuffled = Battles.from_records(replace(r, prompt=p) for r, p in zip(battles.records, prompts, strict=True))
    again = evaluate(scorer, shuffled, link, bootstrap_rounds=0, seed=seed, batch_size=batch_size, progress=False)

    def change(key: str, sign: float) -> float | None:
        before, after = result.get(key), again.get(key)
        return None if before is None or after is None else sign * (before - after)

    return {"shuffled_pairwise_accuracy": again["pairwise_accuracy"], "shuffled_log_loss": again["log_loss"],
            "accuracy_drop": change("pairwise_accuracy", 1.0), "log_loss_rise": change("log_loss", -1.0)}  # fmt: skip


def _outcome_probabilities(
    scorer: Scorer, battles: Battles, score_a: np.ndarray, score_b: np.ndarray, link: LogisticLink | None
) -> np.ndarray | None:
    """(n, 3) P(A), P(B), P(tie), or None when the scorer has neither its own probabilities nor a link."""
    if isinstance(scorer, OutcomeModel):
        names = battles.models
        return np.asarray(scorer.outcome_probabilities(
            [p or "" for p in battles.prompts],
            [names[i] for i in battles.model_a.tolist()],
            [names[i] for i in battles.model_b.tolist()],
        ), dtype=np.float64)  # fmt: skip
    if link is None:
        return None
    p_a = link.probability(score_a, score_b)
    return np.stack([p_a, 1 - p_a, np.zeros_like(p_a)], axis=1)


def _block(
    score_a: np.ndarray,
    score_b: np.ndarray,
    winner: np.ndarray,
    known: np.ndarray,
    probs: np.ndarray | None,
    rounds: int,
    level: float,
    seed: int,
    progress: bool = False,
) -> dict[str, Any]:
    decisive = known & (winner <= B_WINS)
    accuracy, n_pairs = pairwise_accuracy(score_a[known], score_b[known], winner[known])
    out: dict[str, Any] = {"pairwise_accuracy": _num(accuracy), "n_pairs": n_pairs}
    if rounds:
        diff, a_won = (score_a - score_b)[decisive], winner[decisive] == A_WINS
        correct = np.where(a_won, diff > 0, diff < 0).astype(np.float64)
        out["pairwise_accuracy_ci"] = [_num(v) for v in bootstrap_interval(correct, rounds, level, seed, progress)]
    out["n_ties"] = int((known & ((winner == TIE) | (winner == BOTH_BAD))).sum())
    if probs is None:
        out["log_loss"] = out["brier"] = None
        return out
    p_win = probs[decisive, 0] / (probs[decisive, 0] + probs[decisive, 1])  # P(A beats B | someone won)
    y = (winner[decisive] == A_WINS).astype(np.float64)
    out["log_loss"], out["brier"] = _num(log_loss(p_win, y)), _num(brier_score(p_win, y))
    if np.nanmax(probs[:, 2], initial=0.0) > 0:
        labels = np.minimum(winner[known].astype(np.int64), TIE)  # both_bad counts as a tie
        out["tie_log_loss"] = _num(categorical_log_loss(probs[known], labels))
    return out


def _categories(battles: Battles) -> dict[str, np.ndarray]:
    masks: dict[str, np.ndarray] = {}
    for row, record in enumerate(battles.records):
        for name in record.categories:
            masks.setdefault(name, np.zeros(len(battles), dtype=bool))[row] = True
    return dict(sorted(masks.items()))


def _num(value: float) -> float | None:
    return None if value != value else float(value)  # NaN -> None, so the JSON stays valid
