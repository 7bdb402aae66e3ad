"""Bradley-Terry with ties (Davidson or Rao-Kupper): pair aggregation, loss / gradient / Hessian, Newton's method.

Battles are first summed into cells (unordered pair i < j; outcome i won / j won / tie), so every later step costs
O(pairs), not O(battles). Arrays in, arrays out (vectorised numpy).

Parameters x = (theta_0, ..., theta_{k-1}[, tau]): log-strengths, plus the tie parameter when ties are modelled.
With d = theta_i - theta_j:
  Davidson   tau = log(nu):  P(i) : P(j) : P(tie) = exp(d / 2) : exp(-d / 2) : nu
  Rao-Kupper tau = kappa > 0: P(i) = sigmoid(d - kappa), P(j) = sigmoid(-d - kappa), P(tie) = 1 - P(i) - P(j)
  no ties:                    P(i) = sigmoid(d)
All three log-likelihoods are concave in these parameters, so damped Newton steps converge.
"""

from __future__ import annotations

import numpy as np

NO_TIES, DAVIDSON, RAO_KUPPER = 0, 1, 2
_DENSE_CELLS = 1 << 22


def pair_outcomes(
    model_a: np.ndarray, model_b: np.ndarray, outcome: np.ndarray, weight: np.ndarray, n_models: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sum battles into (pair, outcome) cells.

    Args:
        model_a: shape (n,), int index of model A.
        model_b: shape (n,), int index of model B (never equal to model_a).
        outcome: shape (n,), 0 = A won, 1 = B won, 2 = tie, -1 = leave the battle out.
        weight: shape (n,), weight of each battle.
        n_models: number of models k.

    Returns:
        pair_i, pair_j: shape (P,), the compared pairs, pair_i < pair_j, sorted.
        counts: shape (P, 3), summed weight of "i won", "j won", "tie".
        counts_sq: shape (P, 3), summed squared weight (for the sandwich estimator).
        cell: shape (n,), flat index into counts.ravel() of every battle, -1 for left-out battles.
    """
    keep = outcome >= 0
    a, b = model_a.astype(np.int64), model_b.astype(np.int64)
    flip = a > b
    lo, hi = np.where(flip, b, a)[keep], np.where(flip, a, b)[keep]
    oc = np.where(flip & (outcome < 2), 1 - outcome, outcome).astype(np.int64)[keep]
    pair_key = lo * n_models + hi
    if n_models * n_models <= _DENSE_CELLS:
        pair_keys = np.flatnonzero(np.bincount(pair_key, minlength=n_models * n_models))
    else:
        pair_keys = np.unique(pair_key)
    cell_kept = np.searchsorted(pair_keys, pair_key) * 3 + oc
    w = weight[keep].astype(np.float64)
    counts = np.bincount(cell_kept, weights=w, minlength=pair_keys.size * 3).reshape(-1, 3)
    counts_sq = np.bincount(cell_kept, weights=w * w, minlength=pair_keys.size * 3).reshape(-1, 3)
    cell = np.full(outcome.shape[0], -1, dtype=np.int64)
    cell[keep] = cell_kept
    return pair_keys // n_models, pair_keys % n_models, counts, counts_sq, cell


def outcome_terms(d: np.ndarray, tau: float, tie_model: int) -> tuple[np.ndarray, ...]:
    """Log-probabilities of the three outcomes of every pair and their first and second derivatives.

    Args:
        d: shape (P,), theta_i - theta_j.
        tau: tie parameter (log nu for Davidson, kappa for Rao-Kupper; ignored without ties).
        tie_model: NO_TIES, DAVIDSON or RAO_KUPPER.

    Returns:
        logp, g_d, g_t, h_dd, h_dt, h_tt: each shape (P, 3), columns i won / j won / tie: log P(outcome) and its
        derivatives by d and tau (g_*), and second derivatives (h_*). Without a tie model the tie column of logp
        is -inf and the tau derivatives are meaningless (no tau parameter exists).
    """
    if tie_model == RAO_KUPPER:
        return _rao_kupper_terms(d, tau)
    u = 0.5 * d
    eta = tau if tie_model == DAVIDSON else -np.inf
    lz = np.logaddexp(np.logaddexp(u, -u), eta)
    p_i, p_j, p_t = np.exp(u - lz), np.exp(-u - lz), np.exp(eta - lz)
    diff = (p_i - p_j)[:, None]
    logp = np.stack([u - lz, -u - lz, eta - lz], axis=1)
    g_d = 0.5 * (np.array([1.0, -1.0, 0.0]) - diff)
    g_t = np.array([0.0, 0.0, 1.0]) - p_t[:, None]
    ones = np.ones((1, 3))
    h_dd = -0.25 * ((p_i + p_j)[:, None] - diff**2) * ones  # the same for every outcome (exponential family)
    h_dt = 0.5 * diff * p_t[:, None] * ones
    h_tt = -(p_t * (1.0 - p_t))[:, None] * ones
    return logp, g_d, g_t, h_dd, h_dt, h_tt


def log_probabilities(d: np.ndarray, tau: float, tie_model: int) -> np.ndarray:
    """log P(i won), log P(j won), log P(tie), shape (P, 3); the first output of `outcome_terms`, computed alone.

    Args:
        d: shape (P,), theta_i - theta_j.
        tau: tie parameter.
        tie_model: NO_TIES, DAVIDSON or RAO_KUPPER.
    """
    if tie_model == RAO_KUPPER:
        u = 0.5 * d
        log_t = np.log(np.expm1(2.0 * tau)) - np.logaddexp(u, tau - u) - np.logaddexp(tau + u, -u)
        return np.stack([-np.logaddexp(0.0, tau - d), -np.logaddexp(0.0, d + tau), log_t], axis=1)
    u = 0.5 * d
    eta = tau if tie_model == DAVIDSON else -np.inf
    lz = np.logaddexp(np.logaddexp(u, -u), eta)
    return np.stack([u - lz, -u - lz, eta - lz], axis=1)


def _rao_kupper_terms(d: np.ndarray, kappa: float) -> tuple[np.ndarray, ...]:
    # log T = log(e^{2k} - 1) - log(e^{d/2} + e^{k - d/2}) - log(e^{k + d/2} + e^{-d/2}) avoids 1 - A - B cancellation.
    u = 0.5 * d
    big_a, big_b = _sigmoid(d - kappa), _sigmoid(-d - kappa)
    a1, b1 = big_a * (1.0 - big_a), big_b * (1.0 - big_b)
    log_t = np.log(np.expm1(2.0 * kappa)) - np.logaddexp(u, kappa - u) - np.logaddexp(kappa + u, -u)
    e = np.exp(-2.0 * kappa)
    l1 = 2.0 / (1.0 - e)  # d/dk log(e^{2k} - 1)
    l2 = -4.0 * e / (1.0 - e) ** 2
    logp = np.stack([-np.logaddexp(0.0, kappa - d), -np.logaddexp(0.0, d + kappa), log_t], axis=1)
    g_d = np.stack([1.0 - big_a, -(1.0 - big_b), big_b - big_a], axis=1)
    g_t = np.stack([-(1.0 - big_a), -(1.0 - big_b), l1 - (1.0 - big_a) - (1.0 - big_b)], axis=1)
    h_dd = np.stack([-a1, -b1, -(a1 + b1)], axis=1)
    h_dt = np.stack([a1, -b1, a1 - b1], axis=1)
    h_tt = np.stack([-a1, -b1, l2 - a1 - b1], axis=1)
    return logp, g_d, g_t, h_dd, h_dt, h_tt


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -x))


def objective(
    x: np.ndarray,
    pair_i: np.ndarray,
    pair_j: np.ndarray,
    counts: np.ndarray,
    tie_model: int,
    l2: float,
    groups: np.ndarray,
    with_derivatives: bool = True,
) -> tuple[float, np.ndarray | None, np.ndarray | None]:
    """Negative log-likelihood plus priors, its gradient and Hessian.

    F(x) = -sum_cells counts * log P + l2 / 2 * |theta|^2 + 1 / 2 * sum_g (sum_{i in g} theta_i)^2.
    The last term (only when l2 == 0) pins the mean of each connected group of models at 0; the likelihood
    does not depend on those means.

    Args:
        x: shape (k,) or (k + 1,), log-strengths [+ tie parameter when tie_model != NO_TIES].
        pair_i, pair_j: shape (P,), compared pairs.
        counts: shape (P, 3), weights of i won / j won / tie.
        tie_model: NO_TIES, DAVIDSON or RAO_KUPPER.
        l2: prior precision on theta.
        groups: shape (k,), connected-component label of every model.
        with_derivatives: False returns (value, None, None).

    Returns:
        value, gradient shape (len(x),), Hessian shape (len(x), len(x)).
    """
    k = groups.shape[0]
    theta = x[:k]
    tau = float(x[k]) if x.shape[0] > k else 0.0
    d = theta[pair_i] - theta[pair_j]
    logp = log_probabilities(d, tau, tie_model)
    present = counts > 0  # 0 * -inf would be nan for ties without a tie model
    value = -float(np.sum(counts * np.where(present, logp, 0.0))) + 0.5 * l2 * float(theta @ theta)
    group_sums = np.bincount(groups, weights=theta) if l2 == 0 else None
    if group_sums is not None:
        value += 0.5 * float(group_sums @ group_sums)
    if not with_derivatives:
        return value, None, None
    _, g_d, g_t, h_dd, h_dt, h_tt = outcome_terms(d, tau, tie_model)
    n = x.shape[0]
    s_d, s_dd = (counts * g_d).sum(1), (counts * h_dd).sum(1)
    grad = np.zeros(n)
    grad[:k] = -np.bincount(pair_i, s_d, k) + np.bincount(pair_j, s_d, k) + l2 * theta
    hess = np.zeros((n, n))
    hess[:k, :k] = _laplacian(pair_i, pair_j, -s_dd, k) + l2 * np.eye(k)
    if group_sums is not None:
        grad[:k] += group_sums[groups]
        hess[:k, :k] += groups[:, None] == groups[None, :]
    if n > k:
        s_dt = (counts * h_dt).sum(1)
        grad[k] = -float((counts * g_t).sum())
        hess[:k, k] = hess[k, :k] = -np.bincount(pair_i, s_dt, k) + np.bincount(pair_j, s_dt, k)
        hess[k, k] = -float((counts * h_tt).sum())
    return value, grad, hess


def _laplacian(pair_i: np.ndarray, pair_j: np.ndarray, weight: np.ndarray, k: int) -> np.ndarray:
    """sum over pairs of weight * (e_i - e_j)(e_i - e_j)^T, shape (k, k)."""
    flat = np.bincount(pair_i * k + pair_j, weight, k * k) + np.bincount(pair_j * k + pair_i, weight, k * k)
    out = -flat.reshape(k, k)
    out[np.diag_indices(k)] = np.bincount(pair_i, weight, k) + np.bincount(pair_j, weight, k)
    return out


def score_outer(
    x: np.ndarray, pair_i: np.ndarray, pair_j: np.ndarray, counts_sq: np.ndarray, tie_model: int, k: int
) -> np.ndarray:
    """The sandwich's "meat": sum over battles of w^2 * grad log P * grad log P^T, shape (len(x), len(x)).

    Battles in the same cell have the same gradient, so the sum runs over cells weighted by summed w^2.

    Args:
        x: shape (k,) or (k + 1,), fitted parameters.
        pair_i, pair_j: shape (P,), compared pairs.
        counts_sq: shape (P, 3), summed squared battle weights per cell.
        tie_model: NO_TIES, DAVIDSON or RAO_KUPPER.
        k: number of models.
    """
    tau = float(x[k]) if x.shape[0] > k else 0.0
    _, g_d, g_t, _, _, _ = outcome_terms(x[:k][pair_i] - x[:k][pair_j], tau, tie_model)
    n = x.shape[0]
    meat = np.zeros((n, n))
    meat[:k, :k] = _laplacian(pair_i, pair_j, (counts_sq * g_d * g_d).sum(1), k)
    if n > k:
        s_dt = (counts_sq * g_d * g_t).sum(1)
        meat[:k, k] = meat[k, :k] = np.bincount(pair_i, s_dt, k) - np.bincount(pair_j, s_dt, k)
        meat[k, k] = float((counts_sq * g_t * g_t).sum())
    return meat


def newton(
    x0: np.ndarray,
    pair_i: np.ndarray,
    pair_j: np.ndarray,
    counts: np.ndarray,
    tie_model: int,
    l2: float,
    groups: np.ndarray,
    max_iter: int,
    tol: float,
) -> tuple[np.ndarray, int, bool]:
    """Minimise `objective` by Newton steps with backtracking; returns (x, iterations, converged).

    Args:
        x0: shape (k,) or (k + 1,), starting point (Rao-Kupper: x0[k] = kappa > 0).
        pair_i, pair_j, counts, tie_model, l2, groups: as for `objective`.
        max_iter: Newton iterations at most.
        tol: converged when the largest accepted step component is below this.
    """
    k = groups.shape[0]
    x = x0.astype(np.float64).copy()
    value, grad, hess = objective(x, pair_i, pair_j, counts, tie_model, l2, groups)
    for iteration in range(1, max_iter + 1):
        assert grad is not None and hess is not None
        step = _solve(hess, grad)
        slope = -float(grad @ step)
        t = 1.0
        while t > 1e-12:  # backtracking; the full step is almost always accepted, so derivatives come along
            trial = x - t * step
            if tie_model != RAO_KUPPER or trial.shape[0] == k or trial[k] > 0:
                found = objective(trial, pair_i, pair_j, counts, tie_model, l2, groups, t == 1.0)
                if found[0] <= value + 1e-4 * t * slope or abs(found[0] - value) <= 1e-13 * abs(value):
                    break
            t *= 0.5
        else:
            return x, iteration, True  # no decrease possible: at the optimum to machine precision
        x = trial
        value, grad, hess = found if found[1] is not None else objective(x, pair_i, pair_j, counts, tie_model, l2, groups)
        if float(np.max(np.abs(t * step))) < tol:
            return x, iteration, True
    return x, max_iter, False


def _solve(hess: np.ndarray, grad: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.solve(hess, grad)
    except np.linalg.LinAlgError:  # singular only for degenerate data (e.g. a model in no battle)
        return np.linalg.lstsq(hess, grad, rcond=None)[0]


def sandwich_covariance(hess: np.ndarray, meat: np.ndarray) -> np.ndarray:
    """H^-1 M H^-1, shape (p, p): covariance of the estimate that stays valid when the model is misspecified.

    Args:
        hess: shape (p, p), Hessian of the objective at the optimum (positive definite).
        meat: shape (p, p), `score_outer` at the optimum.
    """
    inverse = np.linalg.inv(hess)
    return inverse @ meat @ inverse


def probabilities(d: np.ndarray, tau: float, tie_model: int) -> np.ndarray:
    """P(i won), P(j won), P(tie) for score gaps d = theta_i - theta_j, shape (P, 3) (tie column 0 without ties).

    Args:
        d: shape (P,), gaps.
        tau: tie parameter.
        tie_model: NO_TIES, DAVIDSON or RAO_KUPPER.
    """
    return np.exp(log_probabilities(d, tau, tie_model))
