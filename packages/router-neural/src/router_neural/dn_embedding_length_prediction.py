"""`dn_embedding_length_prediction`: how many tokens each model's answer to a prompt will have.

Inputs as in dn_embedding (prompt embedding, scaled prompt features, the LLM embedding of the model, learned or
copied from a saved model) plus a learned model-ID embedding; the network predicts log(tokens) and is trained with
MSE on the log token counts of every answer in the training battles (`router_core.length.length_samples`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import nn

from router_core.data.types import Battles
from router_core.errors import DataError
from router_core.features import PromptFeatureScaler, prompt_feature_matrix
from router_core.length import LengthSamples, MedianBaseline, length_samples
from router_core.scorer import RunConfig, TrainHooks
from router_core.specs import DnEmbeddingLengthPredictionSpec
from router_core.store import read_json_object
from router_neural.llm_embedding import LlmEmbeddingStage, stage_for
from router_neural.networks import LengthNetwork
from router_neural.prompt_scorer import PromptScorer
from router_neural.regression import RegressionData, train_regression
from router_neural.tokens import TokenCounter
from router_neural.training import EVAL_BATCH, LoopState, default_device, seed_everything

LENGTH_STATE = "length.json"


class DnEmbeddingLengthPredictor(PromptScorer):
    """Predicts answer lengths in tokens (`predict_lengths`); a `router_core.length.LengthPredictor`, not a scorer.

    Prompt inputs, encoder, feature scaler and save / load come from `PromptScorer`; `score` is refused.
    """

    spec_type: ClassVar[type[DnEmbeddingLengthPredictionSpec]] = DnEmbeddingLengthPredictionSpec
    spec: DnEmbeddingLengthPredictionSpec
    network_: LengthNetwork
    log_shift_: float = 0.0
    """Added to every predicted log length; chosen on the selection answers by `fit` (see `_median_log_shift`)."""

    @property
    def tokenizer(self) -> str:
        """Name of the tokenizer lengths are counted in."""
        return self.spec.tokenizer

    def count_tokens(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens of every text in this model's tokenizer, shape (n,), int64."""
        return TokenCounter(self.spec.tokenizer).count(texts)

    def preflight(self) -> None:
        """Load the prompt encoder and the tokenizer now, so a broken install fails before any data is read."""
        super().preflight()
        TokenCounter(self.spec.tokenizer).load()

    # -- training ----------------------------------------------------------------------------------------------
    @staticmethod
    def _rows(samples: LengthSamples, tokens: np.ndarray, row_of: dict[str, int], index: dict[str, int]) -> RegressionData:
        """Regression rows of the samples by models in `index` (others left out), target log(tokens)."""
        tokens = np.maximum(tokens, 1)
        models = np.array([index.get(m, -1) for m in samples.models], dtype=np.int64)
        rows = np.array([row_of[p] for p in samples.prompts], dtype=np.int64)
        data = RegressionData(rows, models, np.log(tokens).astype(np.float32))
        return data.select(models >= 0)

    def fit(self, train: Battles, selection: Battles, run: RunConfig, hooks: TrainHooks) -> Self:
        """Train on every answer in `train`, keep the epoch with the lowest log-space MSE on `selection`'s answers;
        resume when `run.resume` (answers of models first seen then are left out: the network has no slot for them)."""
        resume = run.resume and self._is_fitted()
        seed_everything(run.seed)
        samples, chosen = length_samples(train), length_samples(selection)
        if len(samples) == 0:
            raise DataError(f"{self.spec.model_type} learns from answer texts and the training battles have none "
                            "(no response_a / response_b); use data with responses")  # fmt: skip
        hooks.log(f"counting tokens of {len(samples) + len(chosen)} answers with {self.spec.tokenizer}")
        prompts = list(dict.fromkeys(samples.prompts + chosen.prompts))
        row_of = {p: i for i, p in enumerate(prompts)}
        if resume:
            unseen = sorted(set(samples.models) - set(self.models_))
            if unseen:
                hooks.log(f"resuming: answers of {len(unseen)} models not seen before are left out ({unseen[:5]})")
        else:
            self.history_, self.loop_ = [], LoopState()
            self.models_ = tuple(dict.fromkeys(samples.models))
            self.scaler_ = PromptFeatureScaler().fit(prompt_feature_matrix(list(dict.fromkeys(samples.prompts))))
        index = {m: i for i, m in enumerate(self.models_)}
        table, prompt_dim, feature_dim = self._prompt_table(prompts, default_device(), write_cache=True,
                                                            progress=hooks.progress)  # fmt: skip
        tokens = self.count_tokens(samples.responses)
        train_rows = self._rows(samples, tokens, row_of, index)
        selection_rows = self._rows(chosen, self.count_tokens(chosen.responses), row_of, index)
        self.baseline_ = MedianBaseline.fit(samples.models, tokens)
        if not resume:
            self.stage_ = stage_for(self.spec, self.models_, train, selection, run, hooks)
            torch.manual_seed(run.seed)  # the network's initialisation must not depend on the stage's draws
            self.dims_ = {"prompt_dim": prompt_dim, "feature_dim": feature_dim}
            offsets = np.array([train_rows.target[train_rows.models == i].mean() for i in range(len(self.models_))])
            self.network_ = self._build(torch.as_tensor(self.stage_.vectors_for(self.models_)),
                                        torch.as_tensor(offsets)).to(default_device())  # fmt: skip
        checkpoint = hooks.checkpoint
        self.loop_ = train_regression(
            self.network_, lambda rows, ids: self._forward(table, rows, ids), train_rows, selection_rows, self.spec,
            run, hooks, previous=self.loop_ if resume else None,
            on_checkpoint=(lambda epoch: checkpoint(self, epoch)) if checkpoint else None, desc=self.spec.model_type,
        )  # fmt: skip
        self.history_ = self.loop_.history
        self.log_shift_ = self._median_log_shift(table, selection_rows)
        if self.log_shift_:
            hooks.log(f"log shift {self.log_shift_:+.4f} (predicted lengths x {np.exp(self.log_shift_):.3f}): the "
                      "median of log(actual) - log(predicted) on the selection answers")  # fmt: skip
        return self

    @torch.no_grad()
    def _median_log_shift(self, table: Any, rows: RegressionData) -> float:
        """The median of target - predicted log length over `rows` (0 without rows): added to every prediction, it
        makes the median predicted / actual ratio 1 on them. MSE in log space fits the mean of log length; this
        moves the fit to the median, which the ratio metrics read."""
        if len(rows) == 0:
            return 0.0
        self.network_.eval()
        device = next(self.network_.parameters()).device
        index, models, target = rows.tensors(device)
        predicted = torch.cat([self._forward(table, index[i : i + EVAL_BATCH], models[i : i + EVAL_BATCH])
                               for i in range(0, len(rows), EVAL_BATCH)])  # fmt: skip
        return float(torch.median(target - predicted.float()))

    def _build(self, vectors: torch.Tensor, offsets: torch.Tensor) -> LengthNetwork:
        spec = self.spec
        return LengthNetwork(self.dims_["prompt_dim"], self.dims_["feature_dim"], vectors, offsets,
                             spec.model_id_embedding_dim, spec.input_proj_dim, list(spec.hidden_dims), spec.dropout,
                             spec.use_skip_connections)  # fmt: skip

    def report(self) -> dict[str, Any]:
        """The epoch kept and the log shift chosen on the selection answers."""
        return super().report() | {"log_shift": self.log_shift_}

    # -- inference ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_lengths(self, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Predicted lengths in tokens, shape (n_prompts, n_models), float64; a model never seen in training gets
        the mean model-ID vector, LLM embedding and offset."""
        out = np.zeros((len(prompts), len(models)))
        if not prompts or not models:
            return out
        self.network_.eval()
        device = next(self.network_.parameters()).device
        index = {m: i for i, m in enumerate(self.models_)}
        ids = torch.as_tensor([index.get(m, -1) for m in models], device=device)
        table = self._prompt_table(list(prompts), device)[0]
        step = max(batch_size, 1)
        for start in range(0, len(prompts), step):
            rows = torch.arange(start, min(start + step, len(prompts)), device=device)
            logs = self._forward(table, rows.repeat_interleave(len(ids)), ids.repeat(len(rows)))
            logs = logs.view(len(rows), len(ids)).double() + self.log_shift_
            out[start : start + len(rows)] = logs.exp().cpu().numpy()
        return out

    def score(self, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Refused: a length model predicts lengths (`predict_lengths`), not preference scores."""
        raise TypeError(f"{self.spec.model_type} predicts answer lengths (predict_lengths), not scores")

    # -- persistence -------------------------------------------------------------------------------------------
    def _network_config(self) -> dict[str, Any]:
        n_models, d_llm = self.network_.llm_vectors.shape
        return self.dims_ | {"n_models": int(n_models), "llm_dim": int(d_llm)}

    def _network_from_config(self, config: dict[str, Any]) -> nn.Module:
        self.dims_ = {"prompt_dim": int(config["prompt_dim"]), "feature_dim": int(config["feature_dim"])}
        n_models = int(config["n_models"])
        return self._build(torch.zeros(n_models, int(config["llm_dim"])), torch.zeros(n_models))

    def _save_extra(self, directory: Path) -> None:
        # A stage learned here has its spec in this model's spec (embedding_spec); a copied one keeps its own.
        self.stage_.save(directory, with_spec=self.spec.embedding_spec is None)
        state = {"tokenizer": self.spec.tokenizer, "target": "log(tokens)", "baseline": self.baseline_.to_json(),
                 "log_shift": self.log_shift_}  # fmt: skip
        (directory / LENGTH_STATE).write_text(json.dumps(state, indent=1) + "\n")

    def _load_extra(self, directory: Path) -> None:
        self.stage_ = LlmEmbeddingStage.load(directory, self.spec.embedding_spec)
        state = read_json_object(directory / LENGTH_STATE)
        if state.get("tokenizer") != self.spec.tokenizer:
            raise DataError(f"{directory / LENGTH_STATE}: lengths counted in {state.get('tokenizer')!r}, the spec "
                            f"says {self.spec.tokenizer!r}")  # fmt: skip
        try:
            self.baseline_ = MedianBaseline.from_json(state["baseline"])
            self.log_shift_ = float(state.get("log_shift", 0.0))  # models saved before the shift existed: none
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise DataError(f"{directory / LENGTH_STATE}: damaged baseline ({error})") from None
