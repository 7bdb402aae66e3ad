"""Fields shared by the pairwise scorers' specs: the pairwise loss, tie / both_bad handling and sampling."""

from typing import Literal

from pydantic import Field

from router_core.specs._base import ModelSpecBase

RankingLoss = Literal["margin_ranking", "bradley_terry"]


class RankingLossFields(ModelSpecBase):
    """How a pair of scores is turned into a loss (the neural scorers and gradient_boosting)."""

    ranking_loss_type: RankingLoss = "margin_ranking"
    """Loss on decisive battles: hinge max(0, margin - (s_win - s_lose)), or Bradley-Terry logistic loss."""
    ranking_margin: float = Field(default=0.1, ge=0)
    """Margin of the margin_ranking hinge."""
    non_ranking_loss_coeff: float = Field(default=0.0, ge=0)
    """Weight of the tie / both_bad terms: a tie pushes both scores above +eps, both_bad both below -eps.
    0 drops ties and both_bad from training."""
    tie_both_bad_epsilon: float = Field(default=0.01, ge=0)
    """The eps of the tie / both_bad terms."""
    balance_model_samples: bool = True
    """Draw each epoch's battles with replacement in proportion to `router_core.sampling.balanced_weights`
    (1/count(A) + 1/count(B)), so that rarely seen models count as much as common ones."""


class PairwiseLossFields(RankingLossFields):
    """The loss fields plus gradient clipping (shared by dense_network, dn_embedding and simple_scoring)."""

    gradient_clip: float | None = Field(default=None, gt=0)
    """Clip the global gradient norm to this value (null = no clipping)."""
