"""Loss functions of the neural scorers: pairwise ranking with tie / both_bad terms, and supervised contrastive."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from router_core.data.types import A_WINS, B_WINS, BOTH_BAD, TIE


def ranking_loss(margin_scores: Tensor, kind: str, margin: float) -> Tensor:
    """Per-battle loss of winner-minus-loser score differences, shape (n,) -> (n,).

    `margin_ranking`: max(0, margin - d). `bradley_terry`: -log sigmoid(d), the logistic loss of P(winner wins).
    """
    if kind == "margin_ranking":
        return F.relu(margin - margin_scores)
    if kind == "bradley_terry":
        return F.softplus(-margin_scores)
    raise ValueError(f"unknown ranking loss {kind!r}")


def pair_losses(
    score_a: Tensor, score_b: Tensor, winner: Tensor, *, kind: str, margin: float, coeff: float, eps: float
) -> Tensor:
    """Loss of every battle, shape (n,).

    Decisive battles: `ranking_loss` of the winner's margin. A tie: coeff * (relu(eps - s_a) + relu(eps - s_b)),
    both answers were acceptable, so both scores should be positive. both_bad: coeff * (relu(s_a + eps) +
    relu(s_b + eps)), both should be negative.

    Args:
        score_a: shape (n,), scores of model A.
        score_b: shape (n,), scores of model B.
        winner: shape (n,), winner codes (0 = A, 1 = B, 2 = tie, 3 = both_bad).
    """
    sign = torch.where(winner == A_WINS, 1.0, -1.0).to(score_a.dtype)
    decisive = ranking_loss(sign * (score_a - score_b), kind, margin)
    tie = coeff * (F.relu(eps - score_a) + F.relu(eps - score_b))
    both_bad = coeff * (F.relu(score_a + eps) + F.relu(score_b + eps))
    loss = torch.where(winner <= B_WINS, decisive, torch.zeros_like(decisive))
    loss = torch.where(winner == TIE, tie, loss)
    return torch.where(winner == BOTH_BAD, both_bad, loss)


def pair_correct(score_a: Tensor, score_b: Tensor, winner: Tensor) -> Tensor:
    """1.0 where a decisive battle's winner scored strictly higher, else 0.0 (ties and equal scores count 0)."""
    diff = score_a - score_b
    return (((winner == A_WINS) & (diff > 0)) | ((winner == B_WINS) & (diff < 0))).to(score_a.dtype)


def supervised_contrastive_loss(embeddings: Tensor, labels: Tensor, temperature: float) -> Tensor:
    """SupCon loss (Khosla et al. 2020) of L2-normalised `embeddings` (n, d) with integer `labels` (n,).

    For every anchor with at least one positive (another row with its label), the mean over its positives of
    -log softmax over all other rows; averaged over those anchors.
    """
    z = F.normalize(embeddings, dim=1)
    logits = z @ z.T / temperature
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    counts = positives.sum(1)
    has_positive = counts > 0
    per_anchor = -(log_prob.masked_fill(~positives, 0.0)).sum(1)[has_positive] / counts[has_positive]
    return per_anchor.mean()
