"""The scoring head of transformer_embedding: a two-tower interaction of the prompt side and the LLM side."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _projection(width_in: int, width_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width_in, width_out), nn.LeakyReLU(0.1))


class TwoTowerHead(nn.Module):
    """score = MLP(concat(proj(prompt vector), proj(features)) * proj(LLM embedding)).

    The prompt vector is projected to 2p, the features to p and the model's LLM embedding to 3p (p = proj_dim);
    their element-wise product goes through hidden layers (Linear, LeakyReLU(0.1), Dropout) and a Linear(1). The
    per-model LLM embeddings are a frozen buffer (n_models, d_llm).
    """

    def __init__(self, prompt_dim: int, feature_dim: int, llm_vectors: Tensor, proj_dim: int, hidden_dims: list[int],
                 dropout: float, zero_start: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.register_buffer("llm_vectors", llm_vectors.clone().float())
        self.prompt_proj = _projection(prompt_dim, 2 * proj_dim)
        self.feature_proj = _projection(feature_dim, proj_dim)
        self.llm_proj = _projection(llm_vectors.shape[1], 3 * proj_dim)
        layers: list[nn.Module] = []
        width = 3 * proj_dim
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.1), nn.Dropout(dropout)]
            width = hidden
        output = nn.Linear(width, 1)
        self.mlp = nn.Sequential(*layers, output)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight, a=0.1, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)
        if zero_start:  # over a base model the residual starts at exactly zero
            nn.init.zeros_(output.weight)

    def forward(self, prompt: Tensor, features: Tensor, models: Tensor) -> Tensor:
        """Scores (n,) of prompt vectors (n, prompt_dim) and features (n, feature_dim) paired with `models` (n,)."""
        prompt_side = torch.cat([self.prompt_proj(prompt), self.feature_proj(features)], dim=1)
        return self.mlp(prompt_side * self.llm_proj(self.llm_vectors[models])).squeeze(1)

    def grow(self, new_vectors: Tensor) -> None:
        """Append the LLM embeddings (n_new, d_llm) of models first seen when resuming."""
        self.llm_vectors = torch.cat([self.llm_vectors, new_vectors.to(self.llm_vectors)])
