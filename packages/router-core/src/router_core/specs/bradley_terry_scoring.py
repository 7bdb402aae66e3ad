"""Spec of `bradley_terry_scoring`: maximum-likelihood Bradley-Terry with a tie model and confidence intervals."""

from typing import Literal

from pydantic import Field

from router_core.specs._base import ClosedFormSpecBase, min_occurrences_field


class BradleyTerryScoringSpec(ClosedFormSpecBase):
    """P(i beats j) from log-strengths theta; ties by Davidson or Rao-Kupper; L2 prior; 95% intervals per model."""

    model_type: Literal["bradley_terry_scoring"] = "bradley_terry_scoring"
    min_model_occurrences: int = min_occurrences_field(1000)
    """Battles whose models appear fewer times than this (either side, any outcome) are dropped before training
    (`min_model_comparisons` is accepted as another name for it)."""
    tie_model: Literal["davidson", "rao_kupper"] = "davidson"
    """How ties enter the likelihood: Davidson (P(tie) proportional to nu * sqrt(pi_i * pi_j)) or Rao-Kupper
    (P(i beats j) = sigmoid(theta_i - theta_j - kappa))."""
    tie_outcomes: Literal["ties_and_both_bad", "ties", "drop"] = "ties_and_both_bad"
    """Which non-decisive battles the tie model learns from: ties and both_bad (both count as a tie), ties only
    (both_bad dropped), or none (plain Bradley-Terry on decisive battles)."""
    l2_reg: float = Field(default=1.0, ge=0)
    """Gaussian prior on log-strengths: adds l2_reg / 2 * sum(theta^2) to the summed negative log-likelihood
    (prior standard deviation 1 / sqrt(l2_reg)); 0 = plain maximum likelihood with mean(theta) = 0."""
    balance_model_samples: bool = False
    """Weight each battle by 1/count(A) + 1/count(B) (scaled to mean 1), so rarely seen models weigh as much."""
    confidence_intervals: Literal["none", "sandwich", "bootstrap", "both"] = "sandwich"
    """Per-model intervals: sandwich (robust) standard errors, percentile bootstrap over battles, both, or none."""
    confidence_level: float = Field(default=0.95, gt=0, lt=1)
    """Coverage of the intervals."""
    bootstrap_rounds: int = Field(default=100, ge=2)
    """Refits on battles resampled with replacement, for the bootstrap intervals."""
    max_iter: int = Field(default=100, ge=1)
    """Newton iterations at most."""
    tol: float = Field(default=1e-9, gt=0)
    """Stop when the largest Newton step is below this."""
