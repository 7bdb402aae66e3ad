"""The synthetic battle generator: seeded, planted strengths, outcome rates as asked."""

import numpy as np
import pytest

from router_core.data.types import Battles
from router_core.testing import synthetic_battles


def test_seeded_and_consistent_with_records():
    first, second = synthetic_battles(500, 6, seed=3), synthetic_battles(500, 6, seed=3)
    assert first.battles.records == second.battles.records and first.strengths == second.strengths
    rebuilt = Battles.from_records(first.battles.records)
    names = first.battles.models
    assert [names[i] for i in first.battles.model_a] == [rebuilt.models[i] for i in rebuilt.model_a]
    np.testing.assert_array_equal(first.battles.winner, rebuilt.winner)
    assert (first.battles.model_a != first.battles.model_b).all()


def test_outcome_rates_follow_the_davidson_model():
    syn = synthetic_battles(40_000, 2, seed=1, spread=0.5, tie_strength=1.0, both_bad_rate=0.1)
    names = syn.battles.models
    counts = syn.battles.outcome_counts()
    assert counts["both_bad"] / 40_000 == pytest.approx(0.1, abs=0.01)
    # strengths -0.5 and 0.5: P(stronger) : P(weaker) : P(tie) = e^0.5 : e^-0.5 : 1
    strong = max(names, key=syn.strengths.__getitem__)
    wins = sum(1 for r in syn.battles.records if r.winner in ("model_a", "model_b")
               and (r.model_a if r.winner == "model_a" else r.model_b) == strong)  # fmt: skip
    total = np.exp(0.5) + np.exp(-0.5) + 1
    assert wins / 40_000 == pytest.approx(0.9 * np.exp(0.5) / total, abs=0.01)
    assert counts["tie"] / 40_000 == pytest.approx(0.9 / total, abs=0.01)


def test_only_models_that_play_are_listed():
    syn = synthetic_battles(3, 50, seed=0)
    assert len(syn.battles.models) <= 6 and len(syn.strengths) == 50
    np.testing.assert_array_equal(syn.planted(list(syn.battles.models)), [syn.strengths[m] for m in syn.battles.models])
    with pytest.raises(ValueError, match="at least 2"):
        synthetic_battles(10, 1)
