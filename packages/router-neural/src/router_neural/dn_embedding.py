"""`dn_embedding`: a residual MLP over the prompt's sentence embedding, its scaled features and a fixed per-LLM
embedding, learned in a first stage from the LLMs' responses (or copied from a saved model)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from router_core.data.types import Battles
from router_core.errors import UserError
from router_core.scorer import FitOptions
from router_core.specs import DnEmbeddingSpec
from router_core.store import ModelStore
from router_neural.llm_embedding import STAGE, LlmEmbeddingStage
from router_neural.networks import DnEmbeddingNetwork
from router_neural.prompt_scorer import PromptScorer


def load_stage_from(ref: str) -> LlmEmbeddingStage:
    """The LLM-embedding stage saved with the model `ref` (TYPE/NAME) in the default model store."""
    saved = ModelStore().resolve(ref)
    if not (saved.path / f"{STAGE}.safetensors").is_file():
        raise UserError(f"saved model {ref} has no LLM embedding to load (dn_embedding models carry one)")
    return LlmEmbeddingStage.load(saved.path)


class DnEmbeddingScorer(PromptScorer):
    """Prompt-aware scorer over fixed LLM embeddings; unknown models score NaN."""

    spec_type: ClassVar[type[DnEmbeddingSpec]] = DnEmbeddingSpec
    spec: DnEmbeddingSpec

    def _new_network(self, prompt_dim: int, feature_dim: int, models: Sequence[str], train: Battles,
                     validation: Battles, options: FitOptions) -> nn.Module:  # fmt: skip
        spec = self.spec
        if spec.load_embedding_model_from is not None:
            self.stage_ = load_stage_from(spec.load_embedding_model_from)
            unseen = [m for m in models if m not in set(self.stage_.models_)]
            if unseen:
                options.log(f"{len(unseen)} models are not in {spec.load_embedding_model_from}'s LLM embedding; "
                            "pooling their training responses with its encoder")  # fmt: skip
                self.stage_.extend(train, unseen, options.log)
        else:
            assert spec.embedding_spec is not None  # the spec validator guarantees one source
            self.stage_ = LlmEmbeddingStage(spec.embedding_spec).fit(
                train, validation, models, spec.embedding_model_epochs, options.seed, options.log
            )
        torch.manual_seed(options.seed)  # the network's initialisation must not depend on the stage's draws
        self.dims_ = {"prompt_dim": prompt_dim, "feature_dim": feature_dim}
        return self._build(torch.as_tensor(self.stage_.vectors_for(models)))

    def _build(self, vectors: torch.Tensor) -> DnEmbeddingNetwork:
        spec = self.spec
        return DnEmbeddingNetwork(self.dims_["prompt_dim"], self.dims_["feature_dim"], vectors, spec.input_proj_dim,
                                  list(spec.hidden_dims), spec.dropout, spec.use_skip_connections, spec.model_bias)  # fmt: skip

    def _grow(self, new_models: Sequence[str], train: Battles, options: FitOptions) -> None:
        self.stage_.extend(train, new_models, options.log)
        self.network_.grow(torch.as_tensor(self.stage_.vectors_for(new_models)))

    def _network_config(self) -> dict[str, Any]:
        n_models, d_llm = self.network_.llm_vectors.shape
        return self.dims_ | {"n_models": int(n_models), "llm_dim": int(d_llm)}

    def _network_from_config(self, config: dict[str, Any]) -> nn.Module:
        self.dims_ = {"prompt_dim": int(config["prompt_dim"]), "feature_dim": int(config["feature_dim"])}
        return self._build(torch.zeros(int(config["n_models"]), int(config["llm_dim"])))

    def _save_extra(self, directory: Path) -> None:
        self.stage_.save(directory)

    def _load_extra(self, directory: Path) -> None:
        self.stage_ = LlmEmbeddingStage.load(directory)
