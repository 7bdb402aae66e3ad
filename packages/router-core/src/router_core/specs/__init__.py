"""All specs. The model-type union is spelled once, here; `TrainingSpec` is the whole training document."""

import logging
from typing import Annotated, Any, get_args

from pydantic import Field, field_validator, model_validator

from router_core.specs._base import ClosedFormSpecBase, ModelSpecBase, SpecBase
from router_core.specs.bradley_terry_scoring import BradleyTerryScoringSpec
from router_core.specs.dense_network import DenseNetworkSpec
from router_core.specs.dn_embedding import DnEmbeddingSpec
from router_core.specs.dn_embedding_length_prediction import DnEmbeddingLengthPredictionSpec
from router_core.specs.elo_scoring import EloScoringSpec
from router_core.specs.finetuning import BitFitSpec, FineTuningSpec, FullSpec, LastLayersSpec, LoraSpec, QLoraSpec
from router_core.specs.gradient_boosting import GradientBoostingSpec
from router_core.specs.greedy_ranking import GreedyRankingSpec
from router_core.specs.least_squares_scoring import LeastSquaresScoringSpec
from router_core.specs.llm_embedding import AttentionEmbeddingSpec, LlmEmbeddingSpec
from router_core.specs.mcmf_scoring import McmfScoringSpec
from router_core.specs.optimizers import AdamSpec, AdamWSpec, MuonSpec, OptimizerSpec
from router_core.specs.simple_scoring import SimpleScoringSpec
from router_core.specs.training import MAX_EPOCHS, DataSpec, LogSpec, ModelRef, WandbSpec, check_model_name
from router_core.specs.transformer_embedding import TransformerEmbeddingSpec

ModelSpec = Annotated[
    EloScoringSpec | DenseNetworkSpec | DnEmbeddingSpec | SimpleScoringSpec
    | LeastSquaresScoringSpec | GreedyRankingSpec | McmfScoringSpec | BradleyTerryScoringSpec
    | GradientBoostingSpec | TransformerEmbeddingSpec | DnEmbeddingLengthPredictionSpec,
    Field(discriminator="model_type"),
]
"""One model type's spec, chosen by its `model_type` field."""

log = logging.getLogger(__name__)

def _members(union: Any) -> tuple[type[ModelSpecBase], ...]:
    inner = get_args(union)[0]
    return get_args(inner) or (inner,)


MODEL_SPECS: dict[str, type[ModelSpecBase]] = {cls.model_fields["model_type"].default: cls for cls in _members(ModelSpec)}
"""model_type -> spec class, derived from the union above."""


class ModelSection(SpecBase):
    """The `model` block: the name to save under and either a fresh spec or a saved model to start from."""

    name: str
    """Name to save the trained model under (models/<model_type>/<name>)."""
    start_state: ModelRef | None = None
    """Start from this saved model (`name` or `type/name`) and continue training it; `spec` is then ignored."""
    spec: ModelSpec | None = None
    """The model type and its hyper-parameters (required unless `start_state` is given)."""

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return check_model_name(value)

    @model_validator(mode="before")
    @classmethod
    def _start_state_wins(cls, data: Any) -> Any:
        # The seed document: with start_state, the spec is ignored. Say so rather than reject the document.
        if isinstance(data, dict) and data.get("start_state") is not None and data.get("spec") is not None:
            spec = data["spec"]
            kind = spec.get("model_type", "?") if isinstance(spec, dict) else "?"
            log.warning("warning: model.start_state is given, so model.spec (%s) is ignored: training continues "
                        "the saved model with the spec it was trained with", kind)  # fmt: skip
            data = {k: v for k, v in data.items() if k != "spec"}
        return data

    @model_validator(mode="after")
    def _spec_or_start_state(self) -> "ModelSection":
        if self.spec is None and self.start_state is None:
            raise ValueError("give model.spec (a new model) or model.start_state (continue a saved one)")
        return self


class TrainingSpec(SpecBase):
    """A complete training run: what to train, on which data, for how long."""

    schema_ref: str | None = Field(default=None, alias="$schema")
    """Optional JSON-Schema reference for editors; ignored by training."""
    wandb: WandbSpec | None = None
    """Log the run to Weights & Biases (optional)."""
    model: ModelSection
    """What to train and where to save it."""
    data: DataSpec = DataSpec()
    """Training data and validation split."""
    log: LogSpec = LogSpec()
    """Console logging."""
    epochs: int = Field(ge=0, le=MAX_EPOCHS)
    """Training epochs (passes over the data); closed-form scorers ignore it."""
    batch_size: int = Field(ge=1, le=1_048_576)
    """Battles per optimisation step (and default inference batch)."""
    save_every: int | None = Field(default=None, ge=1, le=MAX_EPOCHS)
    """Save a checkpoint of iterative models every N epochs (models/<type>/<name>@ep<N>)."""

    model_config = SpecBase.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _iterative_models_need_epochs(self) -> "TrainingSpec":
        spec = self.model.spec
        if spec is not None and spec.iterative and self.epochs < 1:
            raise ValueError(f"epochs must be at least 1 for {spec.model_type}")
        return self


def parse_training_spec(document: dict[str, Any]) -> TrainingSpec:
    """Validate a JSON document into a `TrainingSpec` (raises pydantic.ValidationError)."""
    return TrainingSpec.model_validate(document)


__all__ = [
    "MODEL_SPECS",
    "BitFitSpec",
    "BradleyTerryScoringSpec",
    "FineTuningSpec",
    "FullSpec",
    "LastLayersSpec",
    "LoraSpec",
    "QLoraSpec",
    "TransformerEmbeddingSpec",
    "ClosedFormSpecBase",
    "GradientBoostingSpec",
    "GreedyRankingSpec",
    "LeastSquaresScoringSpec",
    "McmfScoringSpec",
    "AdamSpec",
    "AdamWSpec",
    "AttentionEmbeddingSpec",
    "DenseNetworkSpec",
    "DnEmbeddingSpec",
    "DnEmbeddingLengthPredictionSpec",
    "LlmEmbeddingSpec",
    "MuonSpec",
    "OptimizerSpec",
    "SimpleScoringSpec",
    "DataSpec",
    "EloScoringSpec",
    "LogSpec",
    "ModelSection",
    "ModelSpec",
    "ModelSpecBase",
    "SpecBase",
    "TrainingSpec",
    "WandbSpec",
    "parse_training_spec",
]
