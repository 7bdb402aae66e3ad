"""Down-sampling, filtering and the prompt-grouped split."""

import numpy as np
import pytest

from router_core.data.prepare import (
    downsample,
    drop_rare_models,
    drop_without_prompt,
    grouped_folds,
    grouped_split,
    split_battles,
)
from router_core.data.types import Battle
from router_core.errors import DataError


def _battles(n: int, n_prompts: int) -> list[Battle]:
    rng = np.random.default_rng(0)
    return [
        Battle(model_a=f"m{rng.integers(5)}", model_b=f"n{rng.integers(5)}", winner="model_a", id=str(i),
               prompt=f"prompt {i % n_prompts}")
        for i in range(n)
    ]


def test_downsample_is_deterministic_keeps_order_and_clamps():
    battles = _battles(100, 10)
    first, second = downsample(battles, 30, seed=1), downsample(battles, 30, seed=1)
    assert first == second and len(first) == 30
    assert [int(b.id) for b in first] == sorted(int(b.id) for b in first)
    assert downsample(battles, 30, seed=2) != first
    assert len(downsample(battles, 500, seed=1)) == 100


def test_split_is_grouped_by_prompt_deterministic_and_near_fraction():
    battles = _battles(1000, 200)
    train, val = grouped_split(battles, 0.2, seed=7)
    assert len(train) + len(val) == 1000 and abs(len(val) - 200) <= 10
    assert not {battles[i].prompt for i in train} & {battles[i].prompt for i in val}
    again = grouped_split(battles, 0.2, seed=7)
    assert np.array_equal(train, again[0]) and np.array_equal(val, again[1])
    assert not np.array_equal(val, grouped_split(battles, 0.2, seed=8)[1])


def test_split_does_not_depend_on_row_order():
    battles = _battles(300, 60)
    _, val = grouped_split(battles, 0.25, seed=3)
    reversed_battles = battles[::-1]
    _, val_rev = grouped_split(reversed_battles, 0.25, seed=3)
    assert {battles[i].id for i in val} == {reversed_battles[i].id for i in val_rev}


def test_prompt_less_battles_group_by_id():
    battles = [Battle(model_a="a", model_b="b", winner="tie", id=f"q{i // 2}") for i in range(40)]
    train, val = grouped_split(battles, 0.5, seed=0)
    assert not {battles[i].id for i in train} & {battles[i].id for i in val}


def test_split_battles_errors_and_types():
    with pytest.raises(DataError):
        split_battles(_battles(1, 1), 0.2, seed=0)
    split = split_battles(_battles(200, 50), 0.2, seed=0)
    assert len(split.train) + len(split.validation) == 200


def test_filters():
    battles = [Battle(model_a="a", model_b="b", winner="model_a", prompt=" ")] * 3 + [
        Battle(model_a="a", model_b="rare", winner="model_b", prompt="hi")
    ]
    assert len(drop_rare_models(battles, 2)) == 3
    assert len(drop_without_prompt(battles)) == 1


def test_selection_split_never_shares_a_prompt_with_train_or_validation():
    battles = _battles(1000, 250)
    split = split_battles(battles, 0.2, seed=4, selection_fraction=0.15)
    parts = [split.train, split.selection, split.validation]
    assert sum(len(p) for p in parts) == 1000
    assert abs(len(split.selection) - 0.15 * 800) <= 15
    prompts = [{r.prompt for r in p.records} for p in parts]
    assert not prompts[0] & prompts[1] and not prompts[0] & prompts[2] and not prompts[1] & prompts[2]
    again = split_battles(battles, 0.2, seed=4, selection_fraction=0.15)
    assert [r.id for r in again.selection.records] == [r.id for r in split.selection.records]
    # the validation part is what it was without a selection split
    assert [r.id for r in split_battles(battles, 0.2, seed=4).validation.records] == [
        r.id for r in split.validation.records]


def test_prompted_split_drops_prompt_less_battles_from_every_part():
    battles = _battles(300, 60) + [Battle(model_a="m0", model_b="n0", winner="model_b", id=f"x{i}") for i in range(90)]
    split = split_battles(battles, 0.2, seed=0, selection_fraction=0.2)
    assert any(r.prompt is None for p in (split.train, split.selection, split.validation) for r in p.records)
    prompted = split.prompted()
    assert all(r.prompt for p in (prompted.train, prompted.selection, prompted.validation) for r in p.records)
    assert len(prompted.train) + len(prompted.selection) + len(prompted.validation) == 300



def test_grouped_folds_keep_a_prompt_in_one_fold_deal_prompts_evenly_and_ignore_row_order():
    battles = _battles(500, 53)
    folds = grouped_folds(battles, 5, seed=3)
    assert folds.shape == (500,) and set(folds.tolist()) == set(range(5))
    fold_of_prompt: dict[str, set[int]] = {}
    for battle, fold in zip(battles, folds, strict=True):
        fold_of_prompt.setdefault(battle.prompt or "", set()).add(int(fold))
    assert all(len(f) == 1 for f in fold_of_prompt.values())
    prompts_per_fold = np.bincount([next(iter(f)) for f in fold_of_prompt.values()], minlength=5)
    assert prompts_per_fold.max() - prompts_per_fold.min() <= 1  # 53 prompts: 11, 11, 11, 10, 10
    order = np.random.default_rng(0).permutation(500)
    shuffled = grouped_folds([battles[i] for i in order], 5, seed=3)
    np.testing.assert_array_equal(shuffled, folds[order])
    assert not np.array_equal(grouped_folds(battles, 5, seed=4), folds)
    with pytest.raises(ValueError, match="k >= 2"):
        grouped_folds(battles, 1, seed=0)
