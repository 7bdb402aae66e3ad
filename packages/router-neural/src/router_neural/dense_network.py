"""`dense_network`: an MLP over the prompt's sentence embedding, its 44 scaled features and a learned model-ID
embedding (plus a per-model bias), trained on pairwise battles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from torch import nn

from router_core.data.types import Battles
from router_core.scorer import RunConfig, TrainHooks
from router_core.specs import DenseNetworkSpec
from router_neural.networks import DenseNetwork
from router_neural.prompt_scorer import PromptScorer


class DenseNetworkScorer(PromptScorer):
    """Prompt-aware MLP scorer; unknown models score NaN (the router falls back for them)."""

    spec_type: ClassVar[type[DenseNetworkSpec]] = DenseNetworkSpec
    spec: DenseNetworkSpec
    network_: DenseNetwork

    def _new_network(self, prompt_dim: int, feature_dim: int, models: Sequence[str], train: Battles,
                     selection: Battles, run: RunConfig, hooks: TrainHooks) -> nn.Module:  # fmt: skip
        self.input_dim_ = prompt_dim + feature_dim
        return self._network_from_config(self._network_config() | {"n_models": len(models)})

    def _grow(self, new_models: Sequence[str], train: Battles, hooks: TrainHooks) -> None:
        self.network_.grow(len(new_models))

    def _network_config(self) -> dict[str, Any]:
        n_models = self.network_.id_embedding.num_embeddings if self._is_fitted() else 0
        return {"input_dim": self.input_dim_, "n_models": n_models}

    def _network_from_config(self, config: dict[str, Any]) -> nn.Module:
        self.input_dim_ = int(config["input_dim"])
        spec = self.spec
        return DenseNetwork(self.input_dim_, int(config["n_models"]), spec.model_id_embedding_dim, list(spec.hidden_dims),
                            spec.dropout, spec.model_bias, zero_start=spec.base_model is not None)  # fmt: skip
