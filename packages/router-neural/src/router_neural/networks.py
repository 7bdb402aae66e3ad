"""Torch modules of the prompt-aware models: dense_network's MLP, dn_embedding's residual MLP and the length network
of dn_embedding_length_prediction."""

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


def _projection(width_in: int, width_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width_in, width_out), nn.LeakyReLU(0.1))


def _blocks(width: int, hidden_dims: list[int], dropout: float, skip: bool) -> tuple[nn.Sequential, int]:
    """The hidden blocks from `width` through `hidden_dims`, and the output width."""
    blocks = []
    for hidden in hidden_dims:
        blocks.append(_Block(width, hidden, dropout, skip))
        width = hidden
    return nn.Sequential(*blocks), width


def _leaky_init(network: nn.Module) -> None:
    """Kaiming-normal weights (for LeakyReLU(0.1)) and zero biases in every Linear layer."""
    for module in network.modules():
        if isinstance(module, nn.Linear):
            nn.init.kaiming_normal_(module.weight, a=0.1, nonlinearity="leaky_relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)


class _ProjectedInputs(nn.Module):
    """The input side of dn_embedding's and the length model's networks: projections (Linear + LeakyReLU(0.1)) of
    the prompt embedding, the prompt features and the model's LLM embedding, a frozen buffer (n_models, d_llm)."""

    llm_vectors: Tensor

    def __init__(self, prompt_dim: int, feature_dim: int, llm_vectors: Tensor, proj_dim: int) -> None:
        super().__init__()
        self.prompt_dim = prompt_dim
        self.register_buffer("llm_vectors", llm_vectors.clone().float())
        self.prompt_proj = _projection(prompt_dim, proj_dim)
        self.feature_proj = _projection(feature_dim, proj_dim) if feature_dim else None
        self.llm_proj = _projection(llm_vectors.shape[1], proj_dim)
        self.inputs_width = proj_dim * (3 if feature_dim else 2)

    def _prompt_parts(self, inputs: Tensor) -> list[Tensor]:
        """Projections of the prompt embedding and (when used) the features of `inputs` (n, prompt_dim [+ f])."""
        parts = [self.prompt_proj(inputs[:, : self.prompt_dim])]
        if self.feature_proj is not None:
            parts.append(self.feature_proj(inputs[:, self.prompt_dim :]))
        return parts


class DnEmbeddingNetwork(_ProjectedInputs):
    """score = head(blocks([proj(prompt emb), proj(features), proj(LLM embedding)])) + bias(model).

    The per-model LLM embeddings are a frozen buffer (n_models, d_llm); projections are Linear + LeakyReLU(0.1).
    """

    def __init__(self, prompt_dim: int, feature_dim: int, llm_vectors: Tensor, proj_dim: int, hidden_dims: list[int],
                 dropout: float, skip: bool, model_bias: bool, zero_start: bool = False) -> None:  # fmt: skip
        super().__init__(prompt_dim, feature_dim, llm_vectors, proj_dim)
        self.blocks, width = _blocks(self.inputs_width, hidden_dims, dropout, skip)
        self.head = nn.Linear(width, 1)
        self.model_bias = ModelBias(len(llm_vectors), model_bias)
        _leaky_init(self)
        if model_bias or zero_start:
            _zero(self.head)

    def forward(self, inputs: Tensor, models: Tensor) -> Tensor:
        """Scores, shape (n,), of `inputs` (n, prompt_dim [+ feature_dim]) paired with `models` (n,)."""
        parts = [*self._prompt_parts(inputs), self.llm_proj(self.llm_vectors[models])]
        return self.head(self.blocks(torch.cat(parts, dim=1))).squeeze(1) + self.model_bias(models)

    def grow(self, new_vectors: Tensor) -> None:
        """Append LLM embeddings (n_new, d_llm) of new models, bias 0."""
        self.llm_vectors = torch.cat([self.llm_vectors, new_vectors.to(self.llm_vectors)])
        self.model_bias.grow(len(new_vectors))


class LengthNetwork(_ProjectedInputs):
    """log length = offset(model) + head(blocks([proj(prompt emb), proj(features), proj(LLM embedding), id(model)])).

    The LLM embeddings are a frozen buffer (n_models, d_llm), the ID embedding and the per-model offsets are learned;
    the head starts at zero, so the untrained network predicts each model's offset (its mean training log length).
    Model index -1 (never seen in training) gets the mean LLM embedding, the mean ID vector and the mean offset.
    """

    def __init__(self, prompt_dim: int, feature_dim: int, llm_vectors: Tensor, offsets: Tensor, id_dim: int,
                 proj_dim: int, hidden_dims: list[int], dropout: float, skip: bool) -> None:  # fmt: skip
        super().__init__(prompt_dim, feature_dim, llm_vectors, proj_dim)
        self.id_embedding = nn.Embedding(len(llm_vectors), id_dim)
        self.blocks, width = _blocks(self.inputs_width + id_dim, hidden_dims, dropout, skip)
        self.head = nn.Linear(width, 1)
        self.offset = nn.Parameter(offsets.clone().float())
        _leaky_init(self)
        _zero(self.head)

    def forward(self, inputs: Tensor, models: Tensor) -> Tensor:
        """Log lengths, shape (n,), of `inputs` (n, prompt_dim [+ feature_dim]) paired with `models` (n,), -1 = unknown."""
        known = models >= 0
        index = models.clamp(min=0)
        llm = torch.where(known[:, None], self.llm_vectors[index], self.llm_vectors.mean(0))
        ids = torch.where(known[:, None], self.id_embedding(index), self.id_embedding.weight.mean(0))
        offset = torch.where(known, self.offset[index], self.offset.mean())
        parts = [*self._prompt_parts(inputs), self.llm_proj(llm), ids]
        return self.head(self.blocks(torch.cat(parts, dim=1))).squeeze(1) + offset
