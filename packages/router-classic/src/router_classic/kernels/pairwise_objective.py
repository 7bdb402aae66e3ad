"""The pairwise loss of gradient_boosting with its gradient and hessian with respect to both scores of a battle.

The loss is the one the neural scorers train on (`router_neural.losses.pair_losses`; a test checks they agree):
decisive battles get the margin hinge or the Bradley-Terry logistic loss of the winner's score margin; with
coefficient c > 0 a tie adds c * (relu(eps - s_a) + relu(eps - s_b)) and both_bad c * (relu(s_a + eps) +
relu(s_b + eps)). The Bradley-Terry hessian is exact. Hinges have no curvature, so their rows get a constant
hessian of HINGE_HESSIAN times the term's weight: a leaf's Newton step is then the mean subgradient of its rows,
at most `learning_rate` per round, on the scale of the margin.
"""

from __future__ import annotations

import numpy as np

from router_core.data.types import A_WINS, B_WINS, BOTH_BAD, TIE

MARGIN_RANKING, BRADLEY_TERRY = 0, 1
HINGE_HESSIAN = 1.0
HESSIAN_FLOOR = 1e-6
"""Smallest Bradley-Terry hessian: a leaf of confidently ranked rows keeps a finite Newton step."""


def pairwise_objective(
    score_a: np.ndarray, score_b: np.ndarray, winner: np.ndarray, weight: np.ndarray, kind: int, margin: float,
    coeff: float, eps: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Weighted loss of every battle and its derivatives.

    Args:
        score_a: shape (n,), scores of model A.
        score_b: shape (n,), scores of model B.
        winner: shape (n,), winner codes (0 = A, 1 = B, 2 = tie, 3 = both_bad).
        weight: shape (n,), non-negative battle weights (they multiply loss, gradient and hessian).
        kind: MARGIN_RANKING or BRADLEY_TERRY.
        margin: the hinge margin (margin ranking).
        coeff: weight of the tie / both_bad terms.
        eps: the eps of the tie / both_bad terms.

    Returns:
        loss (n,), d loss / d score_a (n,), d loss / d score_b (n,), hessian of score_a (n,), of score_b (n,).
    """
    decisive = winner <= B_WINS
    sign = np.where(winner == A_WINS, 1.0, -1.0)
    diff = sign * (score_a - score_b)  # the winner's margin
    if kind == MARGIN_RANKING:
        loss = np.maximum(margin - diff, 0.0)
        slope = -(margin - diff > 0).astype(np.float64)  # d loss / d diff
        hess = np.full(len(diff), HINGE_HESSIAN)
    elif kind == BRADLEY_TERRY:
        loss = np.logaddexp(0.0, -diff)
        p = 1.0 / (1.0 + np.exp(-diff))  # P(winner wins)
        slope = p - 1.0
        hess = np.maximum(p * (1.0 - p), HESSIAN_FLOOR)
    else:
        raise ValueError(f"unknown ranking loss code {kind}")
    loss, grad_a = np.where(decisive, loss, 0.0), np.where(decisive, sign * slope, 0.0)
    grad_b, hess_a = -grad_a, np.where(decisive, hess, 0.0)
    hess_b = hess_a.copy()
    for code, below in ((TIE, True), (BOTH_BAD, False)):  # tie: both above +eps; both_bad: both below -eps
        rows = winner == code
        for scores, grad, curvature in ((score_a, grad_a, hess_a), (score_b, grad_b, hess_b)):
            gap = eps - scores[rows] if below else scores[rows] + eps
            loss[rows] += coeff * np.maximum(gap, 0.0)
            grad[rows] = coeff * (gap > 0) * (-1.0 if below else 1.0)
            curvature[rows] = coeff * HINGE_HESSIAN
    return weight * loss, weight * grad_a, weight * grad_b, weight * hess_a, weight * hess_b
