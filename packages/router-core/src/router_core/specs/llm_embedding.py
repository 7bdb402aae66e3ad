"""Specs of the LLM-embedding stage: one fixed vector per LLM, learned from its (prompt, response) pairs."""

from typing import Annotated, Literal

from pydantic import Field, PositiveInt, model_validator

from router_core.specs._base import SpecBase
from router_core.specs.optimizers import OptimizerSpec
from router_core.specs.training import ModelRef


class AttentionEmbeddingSpec(SpecBase):
    """Pair encoder + attention pooling over a set of an LLM's answers, trained with a supervised contrastive loss
    so that sets of answers by the same LLM land close together (who won is ignored)."""

    embedding_type: Literal["attention"] = "attention"
    encoder_model_name: str = "all-MiniLM-L6-v2"
    """Sentence-transformers model embedding prompts and responses."""
    h_emb: PositiveInt = 256
    """Projection width of the prompt and response embeddings."""
    h_scalar: PositiveInt = 64
    """Projection width of the 32 scaled response features."""
    h_pair: PositiveInt = 256
    """Width of a (prompt, response) pair code; must be divisible by num_attention_heads."""
    d_out: PositiveInt = 128
    """Size of the LLM embedding."""
    pair_mlp_layers: PositiveInt = 2
    """Layers of the pair MLP (Linear, LayerNorm, ReLU, Dropout each)."""
    num_attention_heads: PositiveInt = 4
    """Heads of the attention pooling (one learned query each)."""
    dropout: float = Field(default=0.1, ge=0, lt=1)
    """Dropout in the pair encoder."""
    temperature: float = Field(default=0.07, gt=0)
    """Temperature of the contrastive loss."""
    pairs_per_model: PositiveInt = 32
    """Answers pooled into one set embedding."""
    models_per_batch: PositiveInt = 16
    """LLMs drawn per batch."""
    embeddings_per_model: int = Field(default=4, ge=2)
    """Set embeddings per LLM and batch (the positives of each other)."""
    optimizer: OptimizerSpec
    """Optimizer of the embedding stage."""

    @model_validator(mode="after")
    def _heads_divide_width(self) -> "AttentionEmbeddingSpec":
        if self.h_pair % self.num_attention_heads:
            raise ValueError(f"h_pair ({self.h_pair}) must be divisible by num_attention_heads ({self.num_attention_heads})")
        return self


LlmEmbeddingSpec = Annotated[AttentionEmbeddingSpec, Field(discriminator="embedding_type")]
"""How the per-LLM embedding is learned, chosen by `embedding_type`."""


class LlmEmbeddingSource(SpecBase):
    """Where a prompt-aware scorer's fixed per-LLM embeddings come from (dn_embedding, transformer_embedding)."""

    embedding_spec: LlmEmbeddingSpec | None = None
    """Learn the LLM embeddings in a first stage (give this or load_embedding_model_from)."""
    load_embedding_model_from: ModelRef | None = None
    """Reuse the LLM embeddings of a saved model, as TYPE/NAME or NAME (e.g. dn_embedding/my-model); they are copied
    into this model, so retraining the source later does not change it."""
    embedding_model_epochs: PositiveInt = 10
    """Epochs of the LLM-embedding stage."""

    @model_validator(mode="after")
    def _one_embedding_source(self) -> "LlmEmbeddingSource":
        if (self.embedding_spec is None) == (self.load_embedding_model_from is None):
            raise ValueError("give exactly one of embedding_spec and load_embedding_model_from")
        return self
