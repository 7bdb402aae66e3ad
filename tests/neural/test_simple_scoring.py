"""simple_scoring: known answers on tiny data, the tie / both_bad terms, resume."""

import numpy as np

from router_core.data.types import Battle, Battles
from router_core.specs import SimpleScoringSpec
from router_core.testing import quiet_fit_args
from router_neural.simple_scoring import SimpleScoringScorer

OPTIONS = quiet_fit_args(epochs=30, batch_size=8, seed=0)


def battles(*triples: tuple[str, str, str, int]) -> Battles:
    return Battles.from_records(Battle(model_a=a, model_b=b, winner=w, id=f"{a}{b}{i}")
                                for a, b, w, n in triples for i in range(n))


def spec(**kwargs) -> SimpleScoringSpec:
    return SimpleScoringSpec(optimizer={"optimizer_type": "adam", "learning_rate": 0.05}, min_model_occurrences=1, **kwargs)


def test_transitive_wins_give_the_planted_order():
    data = battles(("a", "b", "model_a", 20), ("b", "c", "model_a", 20), ("c", "a", "model_b", 20))
    scorer = SimpleScoringScorer(spec()).fit(data, Battles.from_records([]), *OPTIONS)
    s = scorer.score(["any prompt"], ["a", "b", "c", "d"])[0]
    assert s[0] > s[1] > s[2] and np.isnan(s[3])
    assert s[0] - s[1] >= 0.1 - 1e-3  # the hinge stops once the margin holds


def test_bradley_terry_loss_recovers_win_rates():
    data = battles(("a", "b", "model_a", 30), ("a", "b", "model_b", 10))  # P(a beats b) = 0.75
    options = quiet_fit_args(epochs=200, batch_size=40, seed=0)
    scorer = SimpleScoringScorer(spec(ranking_loss_type="bradley_terry", balance_model_samples=False)).fit(
        data, data, *options)
    s = scorer.score(["p"], ["a", "b"])[0]
    assert abs((s[0] - s[1]) - np.log(3)) < 0.05  # the logit of 0.75


def test_ties_push_up_and_both_bad_push_down():
    data = battles(("a", "b", "tie", 10), ("c", "d", "both_bad", 10), ("a", "c", "model_a", 1))
    scorer = SimpleScoringScorer(spec(non_ranking_loss_coeff=1.0, tie_both_bad_epsilon=0.2)).fit(
        data, Battles.from_records([]), *OPTIONS)
    s = scorer.score(["p"], ["a", "b", "c", "d"])[0]
    assert (s[:2] >= 0.2 - 1e-2).all() and (s[2:] <= -0.2 + 1e-2).all()


def test_resume_keeps_scores_and_adds_new_models(tmp_path):
    first = battles(("a", "b", "model_a", 20))
    scorer = SimpleScoringScorer(spec()).fit(first, Battles.from_records([]), *OPTIONS)
    scorer.save(tmp_path)
    loaded = SimpleScoringScorer.load(tmp_path, scorer.spec)
    before = loaded.score(["p"], ["a", "b"])[0]
    resume = quiet_fit_args(epochs=1, batch_size=8, seed=0, resume=True)
    loaded.fit(battles(("c", "a", "model_a", 5)), Battles.from_records([]), *resume)
    assert loaded.known_models == ("a", "b", "c")
    after = loaded.score(["p"], ["a", "b", "c"])[0]
    assert after[1] == before[1]  # b was not in the new battles: untouched
    assert loaded.loop_.epochs_completed == 31
