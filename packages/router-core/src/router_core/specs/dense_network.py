"""Spec of `dense_network`: an MLP over prompt embedding + prompt features + a learned model-ID embedding."""

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt

from router_core.specs._base import min_occurrences_field
from router_core.specs._base_model import NeuralBaseModelFields
from router_core.specs._pairwise import PairwiseLossFields
from router_core.specs.optimizers import OptimizerSpec


class DenseNetworkSpec(PairwiseLossFields, NeuralBaseModelFields):
    """Score(prompt, model) = MLP([sentence embedding, 44 scaled prompt features, model-ID embedding])."""

    prompt_aware: ClassVar[bool] = True

    model_type: Literal["dense_network"] = "dense_network"
    embedding_model_name: str = "all-MiniLM-L6-v2"
    """Sentence-transformers model for prompt embeddings: all-MiniLM-L6-v2 (packaged, offline), a local
    directory, or a Hugging Face hub name (needs the hub or its local cache)."""
    hidden_dims: list[PositiveInt] = Field(min_length=1)
    """Widths of the hidden layers (Linear, LeakyReLU(0.1), Dropout each)."""
    model_id_embedding_dim: PositiveInt
    """Size of the learned per-model embedding."""
    optimizer: OptimizerSpec
    """Optimizer and learning-rate schedule."""
    dropout: float = Field(default=0.2, ge=0, lt=1)
    """Dropout after every hidden layer."""
    model_bias: bool = True
    """Add a learned per-model scalar to the network output, so the prompt-agnostic strength is one parameter
    per model and the MLP learns the prompt-dependent part."""
    use_prompt_features: bool = True
    """Feed the 44 hand-made prompt features (scaled with the scaler fitted on the training prompts)."""
    min_model_occurrences: int = min_occurrences_field(20)
    """Battles whose models appear fewer times than this (either side, any outcome) are dropped before training
    (`min_model_comparisons` is accepted as another name for it)."""
