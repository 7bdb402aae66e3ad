"""`dn_embedding`: a residual MLP over the prompt's sentence embedding, its scaled features and a fixed per-LLM
embedding, learned in a first stage from the LLMs' responses (or copied from a saved model)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from router_core.data.types import Battles
from router_core.scorer import RunConfig, TrainHooks
from router_core.specs import DnEmbeddingSpec
from router_neural import distributed
from router_neural.llm_embedding import LlmEmbeddingStage, load_stage_from, shared_stage
from router_neural.networks import DnEmbeddingNetwork
from router_neural.prompt_scorer import PromptScorer

__all__ = ["DnEmbeddingScorer", "load_stage_from"]


class DnEmbeddingScorer(PromptScorer):
    """Prompt-aware scorer over fixed LLM embeddings; unknown models score NaN."""

    spec_type: ClassVar[type[DnEmbeddingSpec]] = DnEmbeddingSpec
    spec: DnEmbeddingSpec
    network_: DnEmbeddingNetwork

    def _new_network(self, prompt_dim: int, feature_dim: int, models: Sequence[str], train: Battles,
                     selection: Battles, run: RunConfig, hooks: TrainHooks) -> nn.Module:  # fmt: skip
        stage, vectors = shared_stage(self.spec, models, train, selection, run, hooks)
        if stage is not None:  # a rank other than 0 of a torchrun run holds no learned stage (it does not save)
            self.stage_ = stage
        torch.manual_seed(run.seed)  # the network's initialisation must not depend on the stage's draws
        self.dims_ = {"prompt_dim": prompt_dim, "feature_dim": feature_dim}
        return self._build(vectors)

    def _build(self, vectors: torch.Tensor) -> DnEmbeddingNetwork:
        spec = self.spec
        return DnEmbeddingNetwork(self.dims_["prompt_dim"], self.dims_["feature_dim"], vectors, spec.input_proj_dim,
                                  list(spec.hidden_dims), spec.dropout, spec.use_skip_connections, spec.model_bias,
                                  zero_start=spec.base_model is not None)  # fmt: skip

    def _grow(self, new_models: Sequence[str], train: Battles, hooks: TrainHooks) -> None:
        with distributed.main_process_first():
            self.stage_.extend(train, new_models, hooks.log)
        self.network_.grow(torch.as_tensor(self.stage_.vectors_for(new_models)))

    def _network_config(self) -> dict[str, Any]:
        n_models, d_llm = self.network_.llm_vectors.shape
        return self.dims_ | {"n_models": int(n_models), "llm_dim": int(d_llm)}

    def _network_from_config(self, config: dict[str, Any]) -> nn.Module:
        self.dims_ = {"prompt_dim": int(config["prompt_dim"]), "feature_dim": int(config["feature_dim"])}
        return self._build(torch.zeros(int(config["n_models"]), int(config["llm_dim"])))

    def _save_extra(self, directory: Path) -> None:
        # A stage learned here has its spec in this model's spec (embedding_spec); a copied one keeps its own.
        self.stage_.save(directory, with_spec=self.spec.embedding_spec is None)

    def _load_extra(self, directory: Path) -> None:
        self.stage_ = LlmEmbeddingStage.load(directory, self.spec.embedding_spec)
