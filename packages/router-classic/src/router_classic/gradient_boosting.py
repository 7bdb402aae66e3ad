"""`gradient_boosting`: XGBoost trees over (prompt, model) rows, trained on the pairwise loss of the neural scorers.

Every battle becomes two rows that share the prompt's inputs, one per model; the custom objective
(`kernels/pairwise_objective.py`) gives each row the derivative of the battle's loss with respect to its score.
One boosting round is one epoch; the model keeps the round that did best on the selection battles. Prompt
embeddings and learned LLM embeddings come through `router_core.encoders` (implemented by router-neural), so a
model over prompt_features + model_id trains and serves without torch. Saved as XGBoost's JSON model + state.json.

With `base_model`, the base's per-model score is every row's base margin, so the trees learn a residual over it;
the score is base(m) + alpha * trees(p, m); the round is then chosen on one half of the selection battles and
alpha in [0, 1] fitted on the other (router_core.base_model).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import xgboost as xgb
from xgboost.callback import TrainingCallback

from router_classic.kernels.pairwise_objective import BRADLEY_TERRY, MARGIN_RANKING, pairwise_objective
from router_core.base_model import BaseScores, fit_alpha, selection_halves
from router_core.data.types import A_WINS, B_WINS, Battles
from router_core.encoders import PromptEncoder, learn_llm_embedding, load_llm_embedding, prompt_encoder
from router_core.errors import DataError
from router_core.features import PromptFeatureScaler, prompt_feature_matrix
from router_core.metrics import pairwise_accuracy
from router_core.sampling import balanced_weights
from router_core.scorer import RunConfig, TrainHooks
from router_core.specs import GradientBoostingSpec
from router_core.tree_rows import EMBEDDING_GRID, feature_layout, model_table, pair_rows, prompt_table, score_grid

STATE_FILE, BOOSTER_FILE = "state.json", "booster.json"
LOSS_KINDS = {"margin_ranking": MARGIN_RANKING, "bradley_terry": BRADLEY_TERRY}
BLOCK_SIDE = {"prompt_features": "prompt", "prompt_embedding": "prompt", "model_id": "model",
              "model_embedding": "model"}  # fmt: skip


def _unique_prompts(*battle_sets: Battles) -> list[str]:
    return list(dict.fromkeys(p or "" for battles in battle_sets for p in battles.prompts))


def _pairs(battles: Battles, row_of: dict[str, int], index: dict[str, int]) -> tuple[np.ndarray, ...]:
    """(prompt row, model A, model B, winner) index arrays of the battles whose models are both in `index`."""
    lookup = np.array([index.get(m, -1) for m in battles.models] or [-1], dtype=np.int64)
    a, b = lookup[battles.model_a], lookup[battles.model_b]
    rows = np.array([row_of[p or ""] for p in battles.prompts], dtype=np.int64)
    keep = (a >= 0) & (b >= 0)
    return rows[keep], a[keep], b[keep], battles.winner[keep].astype(np.int64)


def _device(choice: str) -> str:
    if choice != "auto":
        return choice
    has_gpu = Path("/proc/driver/nvidia/gpus").is_dir() and any(Path("/proc/driver/nvidia/gpus").iterdir())
    return "cuda" if has_gpu and xgb.build_info().get("USE_CUDA") else "cpu"


class GradientBoostingScorer:
    """Fitted state: `booster_`, `models_`, `scaler_` (prompt_features), `model_vectors_` (model_embedding),
    `importance_` (share of split gain per input block), `history_`; unknown models score NaN."""

    spec_type: ClassVar[type[GradientBoostingSpec]] = GradientBoostingSpec
    spec: GradientBoostingSpec

    def __init__(self, spec: GradientBoostingSpec) -> None:
        self.spec = spec
        self.history_: list[dict[str, float]] = []
        self._encoder: PromptEncoder | None = None
        self.base_: BaseScores | None = None
        self.alpha_ = 1.0
        self.embedding_grid_ = EMBEDDING_GRID

    @property
    def known_models(self) -> tuple[str, ...]:
        """Models seen in training."""
        return tuple(getattr(self, "models_", ()))

    def report(self) -> dict[str, Any]:
        """The boosting round kept (best on the selection battles) and the split gain by input block."""
        out: dict[str, Any] = {"best_round": self.best_round_, "rounds": self.rounds_completed_}
        if self.base_ is not None:
            out |= {"base_model": self.base_.source, "alpha": self.alpha_}
        return out

    def _uses(self, block: str) -> bool:
        return block in self.spec.input_features

    def preflight(self) -> None:
        """Load the prompt encoder now (with prompt_embedding), so that a missing model fails before data is read."""
        if self._uses("prompt_embedding"):
            self.encoder().dimension()

    def encoder(self) -> PromptEncoder:
        """The sentence encoder of the prompt_embedding input (loaded on first use)."""
        if self._encoder is None:
            self._encoder = prompt_encoder(self.spec.embedding_model_name)
        return self._encoder

    # -- inputs ------------------------------------------------------------------------------------------------
    def _prompt_table(self, prompts: Sequence[str], write_cache: bool = False, progress: bool = False) -> np.ndarray:
        """Prompt inputs, shape (n_prompts, prompt width), float32 (router_core.tree_rows.prompt_table)."""
        def embed(texts: Sequence[str]) -> np.ndarray:
            return self.encoder().encode(texts, write_cache=write_cache, progress=progress)

        return prompt_table(self.spec.input_features, prompts, getattr(self, "scaler_", None), embed,
                            self.embedding_grid_)  # fmt: skip

    def _model_table(self) -> np.ndarray:
        """Model inputs, shape (n_models, model width), float32 (router_core.tree_rows.model_table)."""
        return model_table(self.spec.input_features, len(self.models_), getattr(self, "model_vectors_", None))

    def _matrix(self, rows: np.ndarray, model_width: int, base: np.ndarray | None = None) -> xgb.DMatrix:
        """DMatrix of finished rows (router_core.tree_rows.pair_rows), named and typed by block; with `base` (one
        value per row) it is each row's base margin."""
        vector_width = self.model_vectors_.shape[1] if self._uses("model_embedding") else 0
        names, types = feature_layout(self.spec.input_features, rows.shape[1] - model_width, vector_width)
        return xgb.DMatrix(rows, feature_names=names, feature_types=types, enable_categorical=True, base_margin=base)

    def _llm_vectors(self, train: Battles, selection: Battles, run: RunConfig, hooks: TrainHooks) -> np.ndarray:
        """Vectors of `models_` (n_models, d) from the LLM-embedding stage: learned now or copied from a saved model."""
        spec, models = self.spec, self.models_
        if spec.load_embedding_model_from is None:
            assert spec.embedding_spec is not None  # the spec validator guarantees one source
            stage = learn_llm_embedding(spec.embedding_spec, train, selection, models, spec.embedding_model_epochs,
                                        run.seed, hooks)  # fmt: skip
            return stage.vectors_for(models)
        source, directory = spec.load_embedding_model_from, run.reference("load_embedding_model_from")
        copied = _saved_vectors(directory)
        if copied is None:  # a model with an LLM-embedding stage (dn_embedding): pool unseen models' responses
            stage = load_llm_embedding(directory, source)
            unseen = [m for m in models if m not in set(stage.models_)]
            if unseen:
                hooks.log(f"{len(unseen)} models are not in {source}'s LLM embedding; pooling their responses")
                stage.extend(train, unseen, hooks.log)
            return stage.vectors_for(models)
        known, vectors = copied
        unseen = [m for m in models if m not in known]
        if unseen:
            hooks.log(f"{len(unseen)} models are not in {source}'s LLM embedding; they get its mean vector")
        mean = vectors.mean(0)
        return np.stack([vectors[known[m]] if m in known else mean for m in models]).astype(np.float32)

    # -- training ----------------------------------------------------------------------------------------------
    def fit(self, train: Battles, selection: Battles, run: RunConfig, hooks: TrainHooks) -> Self:
        """Boost `run.epochs` rounds on `train` and keep the round with the best `selection` accuracy (lower
        selection loss breaks ties; train accuracy decides when there are no decisive selection battles)."""
        spec = self.spec
        resume = run.resume and getattr(self, "booster_", None) is not None
        if resume:
            unseen = sorted(set(train.models) - set(self.models_))
            if unseen:
                raise DataError(f"cannot continue a gradient_boosting model with models it was not trained on "
                                f"({', '.join(unseen[:5])}); train a new model instead")  # fmt: skip
        else:
            self.models_, self.history_ = tuple(sorted(train.models)), []
            self.rounds_completed_, self.best_round_ = 0, 0
            self.base_, self.alpha_ = run.base, 1.0
            if self._uses("prompt_features"):
                self.scaler_ = PromptFeatureScaler().fit(prompt_feature_matrix(_unique_prompts(train)))
            if self._uses("model_embedding"):
                self.model_vectors_ = self._llm_vectors(train, selection, run, hooks)
        if spec.non_ranking_loss_coeff == 0:  # ties and both_bad add nothing to the loss: leave them out
            train = train.subset(np.flatnonzero(train.decisive))
        if len(train) == 0:
            raise DataError("no training battles the loss can use (all ties / both_bad with non_ranking_loss_coeff 0)")
        prompts = _unique_prompts(train, selection)
        table = self._prompt_table(prompts, write_cache=True, progress=hooks.progress)
        row_of, index = {p: i for i, p in enumerate(prompts)}, {m: i for i, m in enumerate(self.models_)}
        models = self._model_table()
        base = self.base_.for_models(self.models_) if self.base_ is not None else None
        choosing = fitting_alpha = selection
        if base is not None:  # the round is chosen on one half of the selection battles, alpha fitted on the other
            choosing, fitting_alpha = selection_halves(selection, run.seed)
        battles = {"train": _pairs(train, row_of, index), "selection": _pairs(choosing, row_of, index)}
        matrices = {name: self._matrix(pair_rows(table, models, np.r_[rows, rows], np.r_[a, b]), models.shape[1],
                                       None if base is None else base[np.r_[a, b]])
                    for name, (rows, a, b, _) in battles.items()}  # fmt: skip
        _, a, b, winner = battles["train"]
        weight = balanced_weights(a, b, len(self.models_)) if spec.balance_model_samples else np.ones(len(a))
        tracker = _RoundTracker(self, battles, matrices, run, hooks)
        booster = xgb.train(self._params(run), matrices["train"], num_boost_round=run.epochs,
                            obj=self._objective(winner, weight), callbacks=[tracker],
                            xgb_model=self.booster_ if resume else None)  # fmt: skip
        self.booster_ = booster[: tracker.best_round]
        self.rounds_completed_, self.best_round_ = tracker.rounds, tracker.best_round
        self.importance_ = block_importance(self.booster_, self.spec.input_features)
        hooks.log(f"kept round {self.best_round_} of {self.rounds_completed_}; split gain by input: "
                  + ", ".join(f"{k} {v:.1%}" for k, v in self.importance_["blocks"].items()))  # fmt: skip
        if base is not None:
            self.alpha_ = self._fit_alpha(table, models, base, _pairs(fitting_alpha, row_of, index), hooks)
        return self

    def _fit_alpha(self, table: np.ndarray, models: np.ndarray, base: np.ndarray,
                   selection: tuple[np.ndarray, ...], hooks: TrainHooks) -> float:  # fmt: skip
        """alpha in [0, 1] minimising the log-loss of base + alpha * trees on the decisive selection battles."""
        rows, a, b, winner = selection
        decisive = winner <= B_WINS
        if not decisive.any():
            hooks.log("no decisive selection battles to fit alpha on; alpha = 1 (data.selection_split is 0 or too small)")
            return 1.0
        rows, a, b, winner = rows[decisive], a[decisive], b[decisive], winner[decisive]
        matrix = self._matrix(pair_rows(table, models, np.r_[rows, rows], np.r_[a, b]), models.shape[1])
        trees = self.booster_.predict(matrix, output_margin=True)
        n = len(rows)
        alpha = fit_alpha(base[a] - base[b], trees[:n].astype(np.float64) - trees[n:], winner == A_WINS)
        hooks.log(f"alpha = {alpha:.3f} on {n} decisive selection battles, the half that did not choose the round "
                  f"(base: {self.base_.source if self.base_ else ''})")  # fmt: skip
        return alpha

    def _params(self, run: RunConfig) -> dict[str, Any]:
        spec = self.spec
        return {"max_depth": spec.max_depth, "eta": spec.learning_rate, "colsample_bytree": spec.colsample_bytree,
                "alpha": spec.reg_alpha, "lambda": spec.reg_lambda, "subsample": 1.0, "tree_method": "hist",
                "device": _device(spec.device), "seed": run.seed, "base_score": 0.0,
                "disable_default_eval_metric": 1} | ({"nthread": spec.threads} if spec.threads else {})  # fmt: skip

    def _objective(self, winner: np.ndarray, weight: np.ndarray) -> Any:
        """XGBoost's custom objective: rows [0, n) are the A sides of the n battles, rows [n, 2n) the B sides."""
        spec, n = self.spec, len(winner)
        kind = LOSS_KINDS[spec.ranking_loss_type]

        def objective(predictions: np.ndarray, _: xgb.DMatrix) -> tuple[np.ndarray, np.ndarray]:
            _loss, grad_a, grad_b, hess_a, hess_b = pairwise_objective(
                predictions[:n].astype(np.float64), predictions[n:].astype(np.float64), winner, weight, kind,
                spec.ranking_margin, spec.non_ranking_loss_coeff, spec.tie_both_bad_epsilon)  # fmt: skip
            return np.concatenate([grad_a, grad_b]), np.concatenate([hess_a, hess_b])

        return objective

    def pair_metrics(self, predictions: np.ndarray, winner: np.ndarray) -> tuple[float, float]:
        """Mean (unweighted) loss and decisive accuracy of battles whose A / B rows scored `predictions` (2n,)."""
        n = len(winner)
        if n == 0:
            return float("nan"), float("nan")
        a, b = predictions[:n].astype(np.float64), predictions[n:].astype(np.float64)
        spec = self.spec
        loss = pairwise_objective(a, b, winner, np.ones(n), LOSS_KINDS[spec.ranking_loss_type], spec.ranking_margin,
                                  spec.non_ranking_loss_coeff, spec.tie_both_bad_epsilon)[0]  # fmt: skip
        return float(loss.mean()), pairwise_accuracy(a, b, winner)[0]

    # -- inference ---------------------------------------------------------------------------------------------
    def score(self, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Scores (n_prompts, n_models), float64; NaN for models never seen in training."""
        out = np.full((len(prompts), len(models)), np.nan)
        index = {m: i for i, m in enumerate(self.models_)}
        columns = [j for j, m in enumerate(models) if m in index]
        if not prompts or not columns:
            return out
        ids = np.array([index[models[j]] for j in columns], dtype=np.int64)
        table, model_inputs = self._prompt_table(list(prompts)), self._model_table()

        def predict(rows: np.ndarray) -> np.ndarray:
            return self.booster_.predict(self._matrix(rows, model_inputs.shape[1]), output_margin=True)

        out[:, columns] = score_grid(predict, table, model_inputs, ids, batch_size)
        if self.base_ is not None:
            base = self.base_.for_models([models[j] for j in columns])
            out[:, columns] = base[None, :] + self.alpha_ * out[:, columns]
        return out

    # -- persistence -------------------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write booster.json (XGBoost's JSON model) and state.json (models, scaler, LLM vectors, history)."""
        self.booster_.save_model(directory / BOOSTER_FILE)
        state = {
            "format": 1,
            "models": list(self.models_),
            "scaler": self.scaler_.to_json() if self._uses("prompt_features") else None,
            "model_vectors": self.model_vectors_.tolist() if self._uses("model_embedding") else None,
            "embedding_grid": self.embedding_grid_,
            "rounds_completed": self.rounds_completed_,
            "best_round": self.best_round_,
            "importance": self.importance_,
            "history": self.history_,
            "residual": None if self.base_ is None else {"base": self.base_.to_json(), "alpha": self.alpha_},
        }
        (directory / STATE_FILE).write_text(json.dumps(state))

    @classmethod
    def load(cls, directory: Path, spec: GradientBoostingSpec) -> Self:
        """Rebuild a fitted scorer from `save`'s files and its spec."""
        state = json.loads((directory / STATE_FILE).read_text())
        scorer = cls(spec)
        scorer.models_ = tuple(state["models"])
        if state["scaler"] is not None:
            scorer.scaler_ = PromptFeatureScaler.from_json(state["scaler"])
        if state["model_vectors"] is not None:
            scorer.model_vectors_ = np.asarray(state["model_vectors"], dtype=np.float32)
        scorer.booster_ = xgb.Booster(model_file=directory / BOOSTER_FILE)
        if spec.threads:
            scorer.booster_.set_param({"nthread": spec.threads})
        scorer.embedding_grid_ = float(state.get("embedding_grid", 0.0))  # models saved before the grid: unrounded
        scorer.rounds_completed_, scorer.best_round_ = int(state["rounds_completed"]), int(state["best_round"])
        scorer.importance_, scorer.history_ = state["importance"], state["history"]
        if (residual := state.get("residual")) is not None:
            scorer.base_, scorer.alpha_ = BaseScores.from_json(residual["base"]), float(residual["alpha"])
        return scorer


class _RoundTracker(TrainingCallback):
    """After every round: metrics on train and selection battles, the log line, checkpoints, the best round."""

    def __init__(self, scorer: GradientBoostingScorer, battles: dict[str, tuple[np.ndarray, ...]],
                 matrices: dict[str, xgb.DMatrix], run: RunConfig, hooks: TrainHooks) -> None:  # fmt: skip
        super().__init__()
        self.scorer, self.battles, self.matrices, self.run, self.hooks = scorer, battles, matrices, run, hooks
        self.start = self.rounds = scorer.rounds_completed_
        self.use_selection = bool((battles["selection"][3] <= B_WINS).any())
        self.best_round, self.best_key = self.start, None
        self.began = time.perf_counter()
        self.bar = hooks.bar(range(run.epochs), desc="gradient_boosting")
        self.bar_iter = iter(self.bar)

    def _metrics(self, model: xgb.Booster, name: str) -> tuple[float, float]:
        predictions = model.predict(self.matrices[name], output_margin=True)
        return self.scorer.pair_metrics(predictions, self.battles[name][3])

    def before_training(self, model: xgb.Booster) -> xgb.Booster:
        if self.start > 0 and self.use_selection:  # resuming: the loaded model is the one to beat
            loss, accuracy = self._metrics(model, "selection")
            self.best_key = (accuracy, -loss)
        return model

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: Any) -> bool:
        self.rounds += 1
        next(self.bar_iter, None)
        train_loss, train_accuracy = self._metrics(model, "train")
        selection_loss, selection_accuracy = self._metrics(model, "selection")
        record = {"epoch": self.rounds, "train_loss": train_loss, "train_accuracy": train_accuracy,
                  "selection_loss": selection_loss, "selection_accuracy": selection_accuracy}  # fmt: skip
        key = (selection_accuracy, -selection_loss) if self.use_selection else (train_accuracy, -train_loss)
        if self.best_key is None or (not np.isnan(key[0]) and key > self.best_key):
            self.best_key, self.best_round, record["best"] = key, self.rounds, 1.0
        record["seconds"] = time.perf_counter() - self.began
        self.began = time.perf_counter()
        self.scorer.history_.append(record)
        if self.rounds % self.run.print_every == 0 or self.rounds == self.start + self.run.epochs:
            self.hooks.log(f"round {self.rounds}: train loss {train_loss:.4f} acc {train_accuracy:.4f}, selection "
                           f"loss {selection_loss:.4f} acc {selection_accuracy:.4f} (best round {self.best_round})")
        self.hooks.epoch_done(record, self.rounds)
        if self.hooks.checkpoint is not None and self.run.save_every and self.rounds % self.run.save_every == 0:
            self._checkpoint(model)
        return False

    def _checkpoint(self, model: xgb.Booster) -> None:
        """Save the model as it is after this round (fit replaces these attributes with the kept round's)."""
        scorer = self.scorer
        scorer.booster_, scorer.rounds_completed_, scorer.best_round_ = model, self.rounds, self.best_round
        scorer.importance_ = block_importance(model, scorer.spec.input_features)
        assert self.hooks.checkpoint is not None
        self.hooks.checkpoint(scorer, self.rounds)

    def after_training(self, model: xgb.Booster) -> xgb.Booster:
        close = getattr(self.bar, "close", None)
        if close is not None:
            close()
        return model


def block_importance(booster: xgb.Booster, blocks: Sequence[str]) -> dict[str, Any]:
    """Share of the total split gain per input block and per side (prompt / model), and the top 10 features.

    A split on prompt inputs alone moves both rows of a battle together, so its pairwise gain is zero; prompt gain
    therefore measures how much the ranking of models depends on the prompt.
    """
    # a multi-output booster gives one gain per output; their sum is the split's gain
    gain = {name: float(np.sum(value)) for name, value in booster.get_score(importance_type="total_gain").items()}
    total = sum(gain.values()) or 1.0
    by_block = {block: sum(v for k, v in gain.items() if k.split(":")[0] == block) / total for block in blocks}
    sides = {side: sum(v for b, v in by_block.items() if BLOCK_SIDE[b] == side) for side in ("prompt", "model")}
    top = sorted(gain.items(), key=lambda item: -item[1])[:10]
    return {"blocks": by_block, "sides": sides, "top_features": {k: v / total for k, v in top}}


def _saved_vectors(directory: Path) -> tuple[dict[str, int], np.ndarray] | None:
    """The LLM vectors saved by a gradient_boosting model in `directory` (model -> row, vectors), else None."""
    path = directory / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or state.get("model_vectors") is None:
        return None
    return {m: i for i, m in enumerate(state["models"])}, np.asarray(state["model_vectors"], dtype=np.float32)
