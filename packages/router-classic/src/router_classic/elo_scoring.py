"""`elo_scoring`: online Elo ratings, one per model, the same for every prompt."""

from __future__ import annotations

from typing import Any, Self

import numpy as np

from router_classic._common import codes_in
from router_classic._per_model import PerModelScorer
from router_classic.kernels.elo import elo_pass
from router_core.data.types import Battles
from router_core.metrics import pairwise_accuracy
from router_core.sampling import sampling_probabilities
from router_core.scorer import RunConfig, TrainHooks
from router_core.specs import EloScoringSpec


class EloScorer(PerModelScorer):
    """Elo ratings learned by `epochs` passes over the training battles; keeps the best epoch on validation.

    `scores_` holds rating - initial_rating; scoring, saving and loading come from `PerModelScorer`.
    """

    spec_type = EloScoringSpec

    def fit(self, train: Battles, selection: Battles, run: RunConfig, hooks: TrainHooks) -> Self:
        """Run the Elo passes, keeping the epoch with the best accuracy on `selection` (the last epoch when it is
        empty); with `run.resume`, start from the current (loaded) ratings."""
        spec = self.spec
        previous = dict(zip(self.index_, self.scores_ + spec.initial_rating, strict=True)) if run.resume else {}
        names = list(previous) + [m for m in train.models if m not in previous]  # resume keeps every known model
        self.index_ = {m: i for i, m in enumerate(names)}
        self.summary_: dict[str, Any] = {}
        ratings = np.array([previous.get(m, spec.initial_rating) for m in names], dtype=np.float64)
        model_a, model_b, _ = codes_in(self.index_, train)
        rng = np.random.default_rng(run.seed)
        n = len(train)
        probs = sampling_probabilities(model_a, model_b, len(names))
        best = (-np.inf, ratings, 0)
        self.history_ = []
        for epoch in hooks.bar(range(1, run.epochs + 1), desc="elo"):
            order = rng.choice(n, size=n, p=probs) if spec.balance_model_samples else rng.permutation(n)
            ratings, correct, decisive = elo_pass(
                ratings, model_a, model_b, train.winner, order,
                spec.k_factor, spec.initial_rating, spec.tie_both_bad_epsilon, spec.non_ranking_loss_coeff,
            )  # fmt: skip
            self.scores_ = ratings - spec.initial_rating
            record = {"epoch": epoch, "train_online_accuracy": correct / max(decisive, 1)}
            record["selection_accuracy"] = self._accuracy(selection)
            self.history_.append(record)
            hooks.epoch_done(record, epoch)
            if epoch % run.print_every == 0:
                hooks.log(f"epoch {epoch}: train online acc {record['train_online_accuracy']:.4f}, "
                          f"selection acc {record['selection_accuracy']:.4f}")  # fmt: skip
            score = record["selection_accuracy"] if len(selection) else float(epoch)
            if score > best[0]:
                best = (score, ratings, epoch)
        self.scores_, self.best_epoch_ = best[1] - spec.initial_rating, best[2]
        return self

    def _accuracy(self, battles: Battles) -> float:
        a, b, known = codes_in(self.index_, battles)
        accuracy, _ = pairwise_accuracy(self.scores_[a[known]], self.scores_[b[known]], battles.winner[known])
        return accuracy

    def _extra_state(self) -> dict[str, Any]:
        return {"history": self.history_}

    def _restore(self, state: dict[str, Any]) -> None:
        self.history_ = state.get("history", [])
