"""Spec of `gradient_boosting`: XGBoost trees over (prompt, model) rows, trained with a pairwise objective."""

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from router_core.specs._base import min_occurrences_field
from router_core.specs._base_model import BaseModelFields
from router_core.specs._pairwise import RankingLossFields
from router_core.specs.llm_embedding import LlmEmbeddingSpec
from router_core.specs.training import ModelRef

InputBlock = Literal["prompt_features", "prompt_embedding", "model_id", "model_embedding"]
MODEL_BLOCKS: frozenset[str] = frozenset({"model_id", "model_embedding"})
"""Input blocks that tell models apart (at least one is needed: without one every model scores the same)."""


class GradientBoostingSpec(RankingLossFields, BaseModelFields):
    """Score(prompt, model) = sum of boosted regression trees over [prompt inputs, model inputs]; every battle is
    two rows (prompt with model A, prompt with model B) and the pairwise loss of their two outputs is the objective."""

    prompt_aware: ClassVar[bool] = True
    reference_fields: ClassVar[tuple[str, ...]] = ("load_embedding_model_from", "base_model")

    model_type: Literal["gradient_boosting"] = "gradient_boosting"
    input_features: list[InputBlock] = Field(default=["prompt_features", "prompt_embedding", "model_id"], min_length=1)
    """Input blocks of a row, in this order: prompt_features (the 44 scaled hand-made features), prompt_embedding
    (sentence embedding of the prompt), model_id (the model as one categorical feature) and model_embedding (the
    model's vector from an LLM-embedding stage). At least one of model_id and model_embedding."""
    max_depth: PositiveInt = 6
    """Depth of each tree."""
    learning_rate: float = Field(default=0.1, gt=0, le=1)
    """Shrinkage of each tree's output (XGBoost eta)."""
    colsample_bytree: float = Field(default=1.0, gt=0, le=1)
    """Share of the input columns drawn for each tree."""
    reg_alpha: float = Field(default=0.0, ge=0)
    """L1 penalty on leaf values."""
    reg_lambda: float = Field(default=1.0, ge=0)
    """L2 penalty on leaf values (against the summed hessian of a leaf's rows)."""
    balance_model_samples: bool = True
    """Weigh every battle by `router_core.sampling.balanced_weights` (1/count(A) + 1/count(B), mean 1) in the
    gradient and hessian, so that rarely seen models count as much as common ones."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where XGBoost trains: auto = cuda when this XGBoost build has CUDA and a GPU is visible, else cpu."""
    threads: PositiveInt | None = None
    """XGBoost threads (training and in-process scoring); default: XGBoost's (all cores). On a machine shared
    with other busy processes 1 can be much faster: OpenMP threads that wait on each other for a core spin
    (docs/performance.md measured 0.62 s per round with 2 threads vs 0.07 s with 1 at a load average of 11 on 2
    cores)."""
    embedding_model_name: str = "all-MiniLM-L6-v2"
    """Sentence-transformers model of the prompt_embedding block (all-MiniLM-L6-v2 is packaged, works offline)."""
    embedding_spec: LlmEmbeddingSpec | None = None
    """Learn the model_embedding vectors in a first stage (with model_embedding: give this or
    load_embedding_model_from)."""
    load_embedding_model_from: ModelRef | None = None
    """Reuse the LLM embeddings of a saved model, as TYPE/NAME (e.g. dn_embedding/my-model); the vectors are copied
    into this model."""
    embedding_model_epochs: PositiveInt = 10
    """Epochs of the LLM-embedding stage."""
    min_model_occurrences: int = min_occurrences_field(20)
    """Battles whose models appear fewer times than this (either side, any outcome) are dropped before training
    (`min_model_comparisons` is accepted as another name for it)."""

    @field_validator("input_features")
    @classmethod
    def _distinct_blocks(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each input block may be listed once")
        return value

    @model_validator(mode="after")
    def _inputs_and_embedding_source(self) -> "GradientBoostingSpec":
        if not MODEL_BLOCKS & set(self.input_features):
            raise ValueError("input_features needs model_id or model_embedding: without a model input every model "
                             "would get the same score")  # fmt: skip
        sources = (self.embedding_spec is not None) + (self.load_embedding_model_from is not None)
        if "model_embedding" in self.input_features and sources != 1:
            raise ValueError("model_embedding needs exactly one of embedding_spec and load_embedding_model_from")
        if "model_embedding" not in self.input_features and sources:
            raise ValueError("embedding_spec / load_embedding_model_from are only used with the model_embedding input")
        return self
