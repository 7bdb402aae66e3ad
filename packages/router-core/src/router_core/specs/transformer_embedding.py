"""Spec of `transformer_embedding`: a fine-tuned transformer encodes the prompt, a fixed per-LLM embedding the
model; dn_embedding's network scores the pair."""

from typing import ClassVar, Literal

from pydantic import Field, PositiveFloat, PositiveInt

from router_core.specs._base import min_occurrences_field
from router_core.specs._pairwise import PairwiseLossFields
from router_core.specs.finetuning import FineTuningSpec, LoraFineTuning
from router_core.specs.llm_embedding import LlmEmbeddingSource
from router_core.specs.optimizers import OptimizerSpec


class TransformerEmbeddingSpec(PairwiseLossFields, LlmEmbeddingSource):
    """Score(prompt, model) = residual MLP over projections of the fine-tuned transformer's prompt vector, the
    prompt features and the model's LLM embedding (learned first from responses, or loaded from a saved model)."""

    prompt_aware: ClassVar[bool] = True
    reference_fields: ClassVar[tuple[str, ...]] = ("load_embedding_model_from",)

    model_type: Literal["transformer_embedding"] = "transformer_embedding"
    transformer_model_name: str = "sentence-transformers/all-MiniLM-L12-v2"
    """Encoder to fine-tune: a sentence-transformers model (its pooling config picks mean / CLS / last-token
    pooling), as all-MiniLM-L6-v2 (packaged, offline), a local directory or a Hugging Face hub name."""
    finetuning_spec: FineTuningSpec = LoraFineTuning()
    """How the encoder is fine-tuned (method: full, lora, qlora, bitfit, last_layers)."""
    hidden_dims: list[PositiveInt] = Field(min_length=1)
    """Widths of the scoring head's hidden blocks (Linear, LayerNorm, LeakyReLU(0.1), Dropout each)."""
    optimizer: OptimizerSpec
    """Optimizer and learning-rate schedule of the encoder and the head."""
    dropout: float = Field(default=0.2, ge=0, lt=1)
    """Dropout after every hidden block of the head."""
    max_length: PositiveInt = Field(default=256, le=8192)
    """Prompts are truncated to this many tokens (batches are padded to their longest prompt)."""
    proj_dim: PositiveInt = 64
    """Width of each input projection of the head (prompt vector, features, LLM embedding)."""
    scoring_head_lr_multiplier: PositiveFloat = 1.0
    """The head's learning rates are the optimizer's times this (the encoder keeps the optimizer's)."""
    use_prompt_features: bool = True
    """Feed the 44 hand-made prompt features (scaled with the scaler fitted on the training prompts)."""
    seed: int | None = None
    """Seed of initialisation and sampling; null uses data.seed."""
    gradient_clip: float | None = Field(default=1.0, gt=0)
    """Clip the global gradient norm to this value (null = no clipping)."""
    min_model_occurrences: int = min_occurrences_field(20)
    """Battles whose models appear fewer times than this (either side, any outcome) are dropped before training
    (`min_model_comparisons` is accepted as another name for it)."""
