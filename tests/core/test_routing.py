"""route(): the best model per prompt, first candidate on ties; and the unknown-model fallback it relies on."""

import numpy as np
import pytest

from router_core.routing import route
from router_core.scoring import fill_unknown_models


def test_route_picks_the_highest_score_per_prompt() -> None:
    scores = np.array([[0.1, 0.9, 0.3], [2.0, -1.0, 1.5], [-3.0, -2.0, -1.0]])
    index, best = route(scores)
    assert index.tolist() == [1, 0, 2]
    assert best.tolist() == [0.9, 2.0, -1.0]


def test_ties_go_to_the_earliest_candidate() -> None:
    index, best = route(np.array([[0.5, 0.5, 0.1], [0.0, 0.0, 0.0]]))
    assert index.tolist() == [0, 0]
    assert best.tolist() == [0.5, 0.0]


def test_permuting_candidates_permutes_the_choice() -> None:
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((50, 7))  # continuous: no ties
    order = rng.permutation(7)
    index, best = route(scores)
    permuted_index, permuted_best = route(scores[:, order])
    assert (order[permuted_index] == index).all()
    assert np.array_equal(permuted_best, best)


def test_no_prompts_gives_empty_routes() -> None:
    index, best = route(np.zeros((0, 3)))
    assert index.shape == best.shape == (0,)


@pytest.mark.parametrize("bad", [np.zeros((2, 0)), np.zeros(3), np.array([[np.nan, 1.0]])])
def test_route_refuses_no_candidates_and_nan(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="route"):
        route(bad)


def test_unknown_models_get_the_mean_of_the_known_ones() -> None:
    scores = np.array([[1.0, np.nan, 3.0], [0.0, np.nan, -2.0]])
    filled = fill_unknown_models(scores.copy(), ["a", "new", "b"])
    assert filled[:, 1].tolist() == [2.0, -1.0]
    assert route(filled)[0].tolist() == [2, 0]


def test_all_unknown_models_score_zero() -> None:
    filled = fill_unknown_models(np.full((2, 2), np.nan), ["x", "y"])
    assert filled.tolist() == [[0.0, 0.0], [0.0, 0.0]]
