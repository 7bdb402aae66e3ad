"""Spec of `dn_embedding`: an MLP over prompt embedding + prompt features + a fixed per-LLM embedding."""

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt

from router_core.specs._base import min_occurrences_field
from router_core.specs._base_model import NeuralBaseModelFields
from router_core.specs._pairwise import PairwiseLossFields
from router_core.specs.llm_embedding import LlmEmbeddingSource
from router_core.specs.optimizers import OptimizerSpec


class DnEmbeddingSpec(PairwiseLossFields, LlmEmbeddingSource, NeuralBaseModelFields):
    """Score(prompt, model) = residual MLP over projections of the prompt embedding, the prompt features and the
    model's LLM embedding, learned first from (prompt, response) pairs or loaded from a saved model."""

    prompt_aware: ClassVar[bool] = True
    reference_fields: ClassVar[tuple[str, ...]] = ("load_embedding_model_from", "base_model")

    model_type: Literal["dn_embedding"] = "dn_embedding"
    hidden_dims: list[PositiveInt] = Field(min_length=1)
    """Widths of the hidden blocks (Linear, LayerNorm, LeakyReLU(0.1), Dropout each)."""
    optimizer: OptimizerSpec
    """Optimizer and learning-rate schedule of the scoring network."""
    dropout: float = Field(default=0.2, ge=0, lt=1)
    """Dropout after every hidden block."""
    embedding_model_name: str = "all-MiniLM-L6-v2"
    """Sentence-transformers model for prompt embeddings (all-MiniLM-L6-v2 is packaged and works offline)."""
    use_skip_connections: bool = False
    """Add a shortcut around every hidden block (identity, or a bias-free Linear when widths differ)."""
    input_proj_dim: PositiveInt = 64
    """Width of each input projection (prompt embedding, features, LLM embedding)."""
    model_bias: bool = True
    """Add a learned per-model scalar to the network output (the prompt-agnostic strength)."""
    use_prompt_features: bool = True
    """Feed the 44 hand-made prompt features (scaled with the scaler fitted on the training prompts)."""
    gradient_clip: float | None = Field(default=1.0, gt=0)
    """Clip the global gradient norm to this value (null = no clipping)."""
    min_model_occurrences: int = min_occurrences_field(20)
    """Battles whose models appear fewer times than this (either side, any outcome) are dropped before training
    (`min_model_comparisons` is accepted as another name for it)."""
