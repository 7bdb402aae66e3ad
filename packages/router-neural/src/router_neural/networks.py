"""Torch modules of the prompt-aware scorers: dense_network's MLP and dn_embedding's residual MLP."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _zero(layer: nn.Linear) -> None:
    """Start the output layer at zero: with a per-model bias (or over a base model) the untrained network is
    exactly the prompt-agnostic model, and prompt-dependent terms grow from there."""
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)


class ModelBias(nn.Module):
    """A learned scalar per model (zero at start), or nothing when disabled."""

    def __init__(self, n_models: int, enabled: bool) -> None:
        super().__init__()
        self.enabled = enabled
        self.bias = nn.Parameter(torch.zeros(n_models)) if enabled else None

    def forward(self, models: Tensor) -> Tensor | float:  # noqa: D102
        return self.bias[models] if self.bias is not None else 0.0

    def grow(self, n_new: int) -> None:
        """Append `n_new` models with bias 0."""
        if self.bias is not None:
            self.bias = nn.Parameter(torch.cat([self.bias.data, self.bias.new_zeros(n_new)]))


class DenseNetwork(nn.Module):
    """score = MLP([prompt inputs, id embedding(model)]) + bias(model); hidden layers Linear, LeakyReLU(0.1), Dropout."""

    def __init__(self, input_dim: int, n_models: int, id_dim: int, hidden_dims: list[int], dropout: float,
                 model_bias: bool, zero_start: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.id_embedding = nn.Embedding(n_models, id_dim)
        layers: list[nn.Module] = []
        width = input_dim + id_dim
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.1), nn.Dropout(dropout)]
            width = hidden
        head = nn.Linear(width, 1)
        self.mlp = nn.Sequential(*layers, head)
        self.model_bias = ModelBias(n_models, model_bias)
        if model_bias or zero_start:
            _zero(head)

    def forward(self, inputs: Tensor, models: Tensor) -> Tensor:
        """Scores, shape (n,), of `inputs` (n, input_dim) paired with `models` (n,)."""
        x = torch.cat([inputs, self.id_embedding(models)], dim=1)
        return self.mlp(x).squeeze(1) + self.model_bias(models)

    def grow(self, n_new: int) -> None:
        """Room for `n_new` more models: new id embeddings drawn like the initial ones, bias 0."""
        old = self.id_embedding.weight.data
        self.id_embedding = nn.Embedding(len(old) + n_new, old.shape[1])
        self.id_embedding.weight.data[: len(old)] = old
        self.model_bias.grow(n_new)


class _Block(nn.Module):
    """Linear -> LayerNorm -> LeakyReLU(0.1) -> Dropout, plus an optional shortcut."""

    def __init__(self, width_in: int, width_out: int, dropout: float, skip: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(width_in, width_out), nn.LayerNorm(width_out), nn.LeakyReLU(0.1),
                                  nn.Dropout(dropout))  # fmt: skip
        self.shortcut: nn.Module | None = None
        if skip:
            self.shortcut = nn.Identity() if width_in == width_out else nn.Linear(width_in, width_out, bias=False)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        out = self.body(x)
        return out + self.shortcut(x) if self.shortcut is not None else out


class DnEmbeddingNetwork(nn.Module):
    """score = head(blocks([proj(prompt emb), proj(features), proj(LLM embedding)])) + bias(model).

    The per-model LLM embeddings are a frozen buffer (n_models, d_llm); projections are Linear + LeakyReLU(0.1).
    """

    def __init__(self, prompt_dim: int, feature_dim: int, llm_vectors: Tensor, proj_dim: int, hidden_dims: list[int],
                 dropout: float, skip: bool, model_bias: bool, zero_start: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.prompt_dim = prompt_dim
        self.register_buffer("llm_vectors", llm_vectors.clone().float())
        self.prompt_proj = nn.Sequential(nn.Linear(prompt_dim, proj_dim), nn.LeakyReLU(0.1))
        self.feature_proj = nn.Sequential(nn.Linear(feature_dim, proj_dim), nn.LeakyReLU(0.1)) if feature_dim else None
        self.llm_proj = nn.Sequential(nn.Linear(llm_vectors.shape[1], proj_dim), nn.LeakyReLU(0.1))
        width = proj_dim * (3 if feature_dim else 2)
        blocks = []
        for hidden in hidden_dims:
            blocks.append(_Block(width, hidden, dropout, skip))
            width = hidden
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(width, 1)
        self.model_bias = ModelBias(len(llm_vectors), model_bias)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight, a=0.1, nonlinearity="leaky_relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        if model_bias or zero_start:
            _zero(self.head)

    def forward(self, inputs: Tensor, models: Tensor) -> Tensor:
        """Scores, shape (n,), of `inputs` (n, prompt_dim [+ feature_dim]) paired with `models` (n,)."""
        parts = [self.prompt_proj(inputs[:, : self.prompt_dim])]
        if self.feature_proj is not None:
            parts.append(self.feature_proj(inputs[:, self.prompt_dim :]))
        parts.append(self.llm_proj(self.llm_vectors[models]))
        return self.head(self.blocks(torch.cat(parts, dim=1))).squeeze(1) + self.model_bias(models)

    def grow(self, new_vectors: Tensor) -> None:
        """Append LLM embeddings (n_new, d_llm) of new models, bias 0."""
        self.llm_vectors = torch.cat([self.llm_vectors, new_vectors.to(self.llm_vectors)])
        self.model_bias.grow(len(new_vectors))
