"""Spec of `transformer_embedding`: a fine-tuned transformer encodes the prompt, a two-tower head pairs it with a
fixed per-LLM embedding."""

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt

from router_core.specs._base import min_occurrences_field
from router_core.specs._base_model import NeuralBaseModelFields
from router_core.specs._pairwise import PairwiseLossFields
from router_core.specs.finetuning import FineTuningSpec, LoraSpec
from router_core.specs.llm_embedding import LlmEmbeddingSource
from router_core.specs.optimizers import OptimizerSpec
from router_core.specs.training import MAX_SEED


class TransformerEmbeddingSpec(PairwiseLossFields, LlmEmbeddingSource, NeuralBaseModelFields):
    """Score(prompt, model): the prompt's tokens go through a fine-tuned transformer (pooled as its
    sentence-transformers config says), its projection and that of the prompt features are multiplied element-wise
    with a projection of the model's LLM embedding, and an MLP turns the product into a score."""

    prompt_aware: ClassVar[bool] = True
    reference_fields: ClassVar[tuple[str, ...]] = ("load_embedding_model_from", "base_model")

    model_type: Literal["transformer_embedding"] = "transformer_embedding"
    transformer_model_name: str = "sentence-transformers/all-MiniLM-L12-v2"
    """Prompt encoder: a Hugging Face hub name, a local model directory, or all-MiniLM-L6-v2 (packaged, works
    offline). Hub names need the hub or the local HF cache."""
    finetuning_spec: FineTuningSpec = LoraSpec()
    """How the encoder is fine-tuned (method: lora, qlora, last_layers, bitfit or full)."""
    hidden_dims: list[PositiveInt] = Field(default=[256, 128], min_length=1)
    """Widths of the scoring MLP's hidden layers (Linear, LeakyReLU(0.1), Dropout each)."""
    dropout: float = Field(default=0.2, ge=0, lt=1)
    """Dropout after every hidden layer of the scoring MLP."""
    max_length: int = Field(default=256, ge=2, le=8192)
    """Prompts are truncated to this many tokens (padding is per batch)."""
    optimizer: OptimizerSpec
    """Optimizer and learning-rate schedule (encoder and head; see scoring_head_lr_multiplier)."""
    scoring_head_lr_multiplier: float = Field(default=1.0, gt=0)
    """The scoring head (projections and MLP) learns at the optimizer's rate times this; the encoder at the rate."""
    proj_dim: PositiveInt = 64
    """Width p of the projections: prompt vector -> 2p, features -> p, LLM embedding -> 3p."""
    gradient_clip: float | None = Field(default=1.0, gt=0)
    """Clip the global gradient norm to this value (null = no clipping)."""
    seed: int = Field(default=42, ge=0, le=MAX_SEED)
    """Seed of the head's initialisation, the LLM-embedding stage and the battle sampling of this model."""
    min_model_occurrences: int = min_occurrences_field(20)
    """Battles whose models appear fewer times than this (either side, any outcome) are dropped before training
    (`min_model_comparisons` is accepted as another name for it)."""
