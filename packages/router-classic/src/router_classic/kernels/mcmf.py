"""Min-cost circulation for ranking: graph construction, OR-Tools solve, and node potentials from the residual graph.

For every compared pair i < j with target gap t_ij (i over j) and weight w_ij there are two arcs,
i -> j with cost +t_ij and j -> i with cost -t_ij, each with capacity w_ij. The min-cost circulation on this
graph is the LP dual of min_s sum w_ij |s_i - s_j - t_ij|, so optimal node potentials are optimal scores
(docs/models/mcmf_scoring.md has the derivation).
"""

from __future__ import annotations

import numpy as np
from numba import njit


def pair_targets(
    wins: np.ndarray, log_odds: bool, smoothing: float, count_weighted: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Compared pairs, their target gaps and weights.

    Args:
        wins: shape (k, k), wins[i, j] = decisive wins of i over j.
        log_odds: target log((w_ij + a) / (w_ji + a)); else the win-rate difference (w_ij - w_ji) / n_ij.
        smoothing: pseudo-count a of the log-odds target.
        count_weighted: weight n_ij = w_ij + w_ji per pair; else 1.

    Returns:
        pair_i, pair_j: shape (P,), pairs with at least one decisive battle, pair_i < pair_j.
        target: shape (P,), t_ij.
        weight: shape (P,), int64 w_ij.
    """
    total = wins + wins.T
    i, j = np.nonzero(np.triu(total > 0, 1))
    if log_odds:
        target = np.log((wins[i, j] + smoothing) / (wins[j, i] + smoothing))
    else:
        target = (wins[i, j] - wins[j, i]) / total[i, j]
    weight = total[i, j].astype(np.int64) if count_weighted else np.ones(i.size, dtype=np.int64)
    return i, j, target, weight


def circulation_arcs(
    pair_i: np.ndarray, pair_j: np.ndarray, target: np.ndarray, weight: np.ndarray, cost_scale: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The two arcs of every pair: tails, heads, capacities, integer costs; each shape (2P,).

    Arc 2p is i -> j with cost round(cost_scale * t_ij), arc 2p + 1 is j -> i with the negated cost.

    Args:
        pair_i, pair_j: shape (P,), compared pairs.
        target: shape (P,), target gap t_ij.
        weight: shape (P,), integer capacity of both arcs.
        cost_scale: multiplier before rounding costs to integers.
    """
    cost = np.rint(target * cost_scale).astype(np.int64)
    tails = np.stack([pair_i, pair_j], axis=1).ravel().astype(np.int64)
    heads = np.stack([pair_j, pair_i], axis=1).ravel().astype(np.int64)
    return tails, heads, np.repeat(weight, 2).astype(np.int64), np.stack([cost, -cost], axis=1).ravel()


def min_cost_circulation(
    n_nodes: int, tails: np.ndarray, heads: np.ndarray, capacity: np.ndarray, cost: np.ndarray
) -> tuple[np.ndarray, int]:
    """Optimal flow of the min-cost circulation (every node supply 0), solved by OR-Tools SimpleMinCostFlow.

    Args:
        n_nodes: number of nodes.
        tails, heads: shape (m,), arc endpoints.
        capacity: shape (m,), int64 arc capacities.
        cost: shape (m,), int64 unit costs (may be negative).

    Returns:
        flow: shape (m,), int64 optimal flow per arc.
        total_cost: the optimal cost.
    """
    from ortools.graph.python import min_cost_flow

    solver = min_cost_flow.SimpleMinCostFlow()
    # ortools' stubs write ndarray[int32] (a dtype where numpy's stubs expect the shape), which no array matches
    arcs = solver.add_arcs_with_capacity_and_unit_cost(tails, heads, capacity, cost)  # pyright: ignore[reportArgumentType]
    for node in range(n_nodes):
        solver.set_node_supply(node, 0)
    status = solver.solve()
    if status != solver.OPTIMAL:
        raise RuntimeError(f"OR-Tools min-cost flow failed with status {status}")
    return np.asarray(solver.flows(arcs), dtype=np.int64), int(solver.optimal_cost())  # pyright: ignore[reportArgumentType]


def residual_arcs(
    tails: np.ndarray, heads: np.ndarray, capacity: np.ndarray, cost: np.ndarray, flow: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arcs of the residual graph: tails, heads, costs, each shape (m',).

    An arc with spare capacity stays (same cost); an arc carrying flow adds its reverse with negated cost.

    Args:
        tails, heads, capacity, cost: shape (m,), the arcs.
        flow: shape (m,), a feasible flow.
    """
    spare, used = flow < capacity, flow > 0
    return (
        np.concatenate([tails[spare], heads[used]]),
        np.concatenate([heads[spare], tails[used]]),
        np.concatenate([cost[spare], -cost[used]]),
    )


@njit(cache=True)
def shortest_distances(n_nodes: int, tails: np.ndarray, heads: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Bellman-Ford distances from a virtual source joined to every node by a 0-cost arc.

    Returns shape (n_nodes,) float64 distances d (all <= 0) with d[head] <= d[tail] + cost on every arc.
    Raises ValueError on a negative cycle (the flow was not optimal).

    Args:
        n_nodes: number of nodes.
        tails, heads: shape (m,), arc endpoints.
        cost: shape (m,), arc costs.
    """
    dist = np.zeros(n_nodes)
    for _ in range(n_nodes + 1):
        changed = False
        for arc in range(tails.shape[0]):
            candidate = dist[tails[arc]] + cost[arc]
            if candidate < dist[heads[arc]]:
                dist[heads[arc]] = candidate
                changed = True
        if not changed:
            return dist
    raise ValueError("negative cycle in the residual graph")


def potentials(n_nodes: int, tails: np.ndarray, heads: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Scores from dual-optimal node potentials of the residual graph, shape (n_nodes,).

    Both d (distances from the virtual source) and -e (e = distances to a virtual sink) satisfy the optimality
    condition pi[head] <= pi[tail] + cost on every residual arc; so does their midpoint, which is used, as it
    lies in the middle of the optimal set rather than at one of its ends. The score is -pi (a node that is
    cheap to reach from everywhere is strong).

    Args:
        n_nodes: number of nodes.
        tails, heads: shape (m,), residual arcs.
        cost: shape (m,), residual arc costs.
    """
    cost = cost.astype(np.float64)
    forward = shortest_distances(n_nodes, tails, heads, cost)
    backward = shortest_distances(n_nodes, heads, tails, cost)
    return 0.5 * (backward - forward)
