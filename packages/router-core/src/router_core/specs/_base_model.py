"""`base_model`: the prompt-agnostic model a prompt-aware scorer learns a residual over.

score(p, m) = base(m) + alpha * r(p, m): the base is a saved prompt-agnostic model (`"TYPE/NAME"`) or an inline
prompt-agnostic spec fitted in the same run; r starts at zero, is pulled toward zero by `residual_penalty`, and
`alpha` in [0, 1] is fitted on the selection battles after training (alpha near 0: the prompt adds nothing).
"""

from typing import Annotated, ClassVar

from pydantic import Field

from router_core.specs._base import ModelSpecBase
from router_core.specs.bradley_terry_scoring import BradleyTerryScoringSpec
from router_core.specs.elo_scoring import EloScoringSpec
from router_core.specs.greedy_ranking import GreedyRankingSpec
from router_core.specs.least_squares_scoring import LeastSquaresScoringSpec
from router_core.specs.mcmf_scoring import McmfScoringSpec
from router_core.specs.simple_scoring import SimpleScoringSpec
from router_core.specs.training import ModelRef

InlineBaseSpec = Annotated[
    BradleyTerryScoringSpec | EloScoringSpec | LeastSquaresScoringSpec | GreedyRankingSpec | McmfScoringSpec
    | SimpleScoringSpec,
    Field(discriminator="model_type"),
]  # fmt: skip
"""A prompt-agnostic model type's spec, fitted in the same run as the prompt-aware model over it."""


class BaseModelFields(ModelSpecBase):
    """The residual-over-a-base fields of every prompt-aware model type."""

    reference_fields: ClassVar[tuple[str, ...]] = ("base_model",)

    base_model: ModelRef | InlineBaseSpec | None = None
    """Prompt-agnostic base: `"TYPE/NAME"` of a saved model, or an inline spec such as
    `{"model_type": "bradley_terry_scoring"}` fitted on every training battle (prompt-less ones included). The
    score becomes base(model) + alpha * residual(prompt, model); null keeps the plain prompt-aware score."""


class NeuralBaseModelFields(BaseModelFields):
    """`base_model` plus the neural residual's pull toward zero."""

    residual_penalty: float = Field(default=0.01, ge=0)
    """With a base: weight of the mean squared residual added to the loss (pulls the prompt effect toward 0)."""
