"""Greedy ranking: net wins by hand, the three normalisations, shared ranks for exact ties, planted order."""

import numpy as np
import pytest

from router_classic.greedy_ranking import GreedyRankingScorer
from router_classic.kernels.greedy import net_win_ranks, normalize_ranks
from router_core.data.types import Battle, Battles
from router_core.specs import GreedyRankingSpec
from router_core.testing import quiet_fit_args, synthetic_battles

OPTS = quiet_fit_args(epochs=0)
EMPTY = Battles.from_records([])


def _battles(rows) -> Battles:
    return Battles.from_records(Battle(model_a=a, model_b=b, winner=w) for a, b, w in rows)


# a: 3 wins 0 losses (net 3); b: 2-1 (net 1); c: 1-2 (net -1); d: 0-3 (net -3); ties do not count.
ROWS = [("a", "b", "model_a"), ("a", "c", "model_a"), ("d", "a", "model_b"), ("b", "c", "model_a"),
        ("b", "d", "model_a"), ("c", "d", "model_a"), ("c", "d", "tie"), ("a", "d", "both_bad")]  # fmt: skip


@pytest.mark.parametrize(
    ("normalization", "expected"),
    [("negative_rank", [0, -1, -2, -3]), ("normalized", [3 / 4, 2 / 4, 1 / 4, 0]), ("centered", [1.5, 0.5, -0.5, -1.5])],
)
def test_known_ranking_and_normalizations(normalization: str, expected: list[float]):
    spec = GreedyRankingSpec(min_model_occurrences=1, score_normalization=normalization)
    scorer = GreedyRankingScorer(spec).fit(_battles(ROWS), EMPTY, *OPTS)
    np.testing.assert_allclose(scorer.score(["p"], ["a", "b", "c", "d"])[0], expected)
    assert scorer.summary_["disagreements"] == 0 and scorer.summary_["train_accuracy"] == 1.0


def test_net_wins_then_win_rate_then_shared_rank():
    wins = np.array([[0, 2, 0, 0], [0, 0, 2, 0], [2, 0, 0, 0], [0, 0, 0, 0]], dtype=float)
    # a, b, c: 2 wins 2 losses each (net 0, rate 0.5); d never played (net 0, rate 0.5): all four tie
    net, rank = net_win_ranks(wins)
    np.testing.assert_array_equal(net, [0, 0, 0, 0])
    np.testing.assert_array_equal(rank, [1.5, 1.5, 1.5, 1.5])
    wins[0, 3] = 1  # a beats d once: a first, then b and c tied, d last
    np.testing.assert_array_equal(net_win_ranks(wins)[1], [0, 1.5, 1.5, 3])
    wins = np.array([[0, 3, 0], [1, 0, 0], [0, 0, 0]], dtype=float)
    wins[2, 0], wins[0, 2] = 4, 6  # a: 9-5 (net 4); c: 4-6 (net -2); b: 1-3 (net -2, lower rate than c)
    np.testing.assert_array_equal(net_win_ranks(wins)[1], [0, 2, 1])


def test_unknown_normalization_is_rejected():
    with pytest.raises(ValueError, match="unknown score normalization"):
        normalize_ranks(np.zeros(2), "nope")


def test_orders_planted_top_and_bottom():
    syn = synthetic_battles(20_000, 12, seed=21, tie_strength=0.3)
    scorer = GreedyRankingScorer(GreedyRankingSpec(min_model_occurrences=1)).fit(syn.battles, EMPTY, *OPTS)
    planted = syn.planted(syn.battles.models)
    assert np.argmax(scorer.scores_) == np.argmax(planted) and np.argmin(scorer.scores_) == np.argmin(planted)
