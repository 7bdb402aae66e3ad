"""Elo: a hand-worked sequence, invariances, resume, planted order."""


import numpy as np
import pytest

from router_classic.elo_scoring import EloScorer
from router_classic.kernels.elo import elo_pass
from router_core.data.types import Battle, Battles
from router_core.specs import EloScoringSpec
from router_core.testing import quiet_fit_args

OPTS = quiet_fit_args(epochs=1)


def test_hand_worked_sequence():
    # Two models at 1500, K=32. Battle 1: A beats B -> expected 0.5 -> A 1516, B 1484.
    # Battle 2: B beats A -> expected_B = 1/(1+10^(32/400)) = 0.45405 -> B +32*(1-0.45405) = +17.47, A -17.47.
    # Battle 3: tie with push 0.1, eps 100: both below 1600 so actual 0.55 each.
    ratings = np.array([1500.0, 1500.0])
    a, b = np.array([0, 0, 0]), np.array([1, 1, 1])
    winner = np.array([0, 1, 2], dtype=np.int8)
    r, correct, decisive = elo_pass(ratings, a, b, winner, np.arange(3), 32.0, 1500.0, 100.0, 0.1)
    e2 = 1 / (1 + 10 ** (32 / 400))
    ra, rb = 1516 - 32 * (1 - e2), 1484 + 32 * (1 - e2)
    ea = 1 / (1 + 10 ** ((rb - ra) / 400))
    expected = [ra + 32 * (0.55 - ea), rb + 32 * (0.55 - (1 - ea))]
    np.testing.assert_allclose(r, expected, rtol=1e-12)
    assert (correct, decisive) == (0, 2)  # battle 1: equal ratings count as wrong; battle 2: A rated higher, B won
    np.testing.assert_array_equal(ratings, [1500.0, 1500.0])  # input untouched


def test_decisive_updates_are_zero_sum_and_relabel_invariant():
    rng = np.random.default_rng(0)
    n, k = 500, 6
    a, b = rng.integers(0, k, n), rng.integers(0, k, n)
    b = np.where(a == b, (b + 1) % k, b)
    winner = rng.integers(0, 2, n).astype(np.int8)
    start = np.full(k, 1500.0)
    r, _, _ = elo_pass(start, a, b, winner, np.arange(n), 16.0, 1500.0, 100.0, 0.1)
    assert r.sum() == pytest.approx(k * 1500.0)
    perm = rng.permutation(k)
    r_perm, _, _ = elo_pass(start, perm[a], perm[b], winner, np.arange(n), 16.0, 1500.0, 100.0, 0.1)
    np.testing.assert_allclose(r_perm[perm], r)
    swapped, _, _ = elo_pass(start, b, a, (1 - winner).astype(np.int8), np.arange(n), 16.0, 1500.0, 100.0, 0.1)
    np.testing.assert_allclose(swapped, r)


def _planted(n: int, seed: int) -> Battles:
    rng = np.random.default_rng(seed)
    strength = {f"m{i}": i * 0.4 for i in range(6)}
    names = list(strength)
    records = []
    for _ in range(n):
        x, y = rng.choice(names, 2, replace=False)
        p = 1 / (1 + np.exp(strength[y] - strength[x]))
        records.append(Battle(model_a=x, model_b=y, winner="model_a" if rng.random() < p else "model_b"))
    return Battles.from_records(records)


def test_fit_recovers_planted_order_and_is_seeded():
    train, val = _planted(3000, 1), _planted(500, 2)
    spec = EloScoringSpec(k_factor=8, min_model_occurrences=1)
    opts = quiet_fit_args(epochs=3, seed=5)
    scorer = EloScorer(spec).fit(train, val, *opts)
    scores = scorer.score(["any prompt"], [f"m{i}" for i in range(6)])[0]
    assert list(np.argsort(scores)) == list(range(6))
    again = EloScorer(spec).fit(train, val, *opts)
    np.testing.assert_array_equal(again.scores_, scorer.scores_)
    assert len(scorer.history_) == 3 and scorer.history_[0]["selection_accuracy"] > 0.6


def test_unknown_model_scores_nan_and_save_load_roundtrip(tmp_path):
    scorer = EloScorer(EloScoringSpec()).fit(_planted(200, 3), _planted(50, 4), *OPTS)
    out = scorer.score(["p", "q"], ["m1", "zzz"])
    assert out.shape == (2, 2) and np.isnan(out[:, 1]).all() and np.isfinite(out[:, 0]).all()
    scorer.save(tmp_path)
    loaded = EloScorer.load(tmp_path, scorer.spec)
    np.testing.assert_array_equal(loaded.score(["p"], ["m0", "m5"]), scorer.score(["p"], ["m0", "m5"]))


def test_refit_after_load_resumes_from_saved_ratings(tmp_path):
    spec = EloScoringSpec(k_factor=4)
    scorer = EloScorer(spec).fit(_planted(2000, 5), _planted(10, 6), *OPTS)
    scorer.save(tmp_path)
    names = [f"m{i}" for i in range(6)]
    resumed = EloScorer.load(tmp_path, scorer.spec).fit(_planted(1, 7), _planted(1, 8), *quiet_fit_args(epochs=1, resume=True))
    # one more battle moves two ratings by at most K=4; every earlier model is still known
    np.testing.assert_allclose(resumed.score(["p"], names), scorer.score(["p"], names), atol=4.0)
    fresh = EloScorer(spec).fit(_planted(1, 7), _planted(1, 8), *OPTS)
    assert np.isnan(fresh.score(["p"], names)).sum() == 4
