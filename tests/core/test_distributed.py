"""router_core.distributed: ranks from torchrun's environment, and the pipeline's rank-0-only writing."""

import json

import pytest

from router_core import distributed
from router_core.errors import UserError
from router_core.pipeline import train_from_spec
from router_core.specs import parse_training_spec
from router_core.store import ModelStore
from router_core.testing import quiet_fit_args, synthetic_battles


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_single_process_is_rank_0_of_1(clean_env):
    assert (distributed.rank(), distributed.world_size(), distributed.local_rank()) == (0, 1, 0)
    assert distributed.is_main_process() and not distributed.is_distributed()
    clean_env.setenv("RANK", "3")  # a stray RANK without WORLD_SIZE > 1 is still a single process
    assert distributed.rank() == 0


def test_ranks_come_from_torchrun_variables(clean_env):
    clean_env.setenv("WORLD_SIZE", "4")
    clean_env.setenv("RANK", "2")
    clean_env.setenv("LOCAL_RANK", "0")
    assert (distributed.rank(), distributed.world_size(), distributed.local_rank()) == (2, 4, 0)
    assert distributed.is_distributed() and not distributed.is_main_process()
    clean_env.setenv("RANK", "4")
    with pytest.raises(UserError, match=r"RANK=4 is outside 0..3"):
        distributed.rank()
    clean_env.setenv("WORLD_SIZE", "two")
    with pytest.raises(UserError, match="WORLD_SIZE='two' is not an integer"):
        distributed.world_size()


def _spec(tmp_path, name: str) -> dict:
    path = tmp_path / "battles.jsonl"
    path.write_text("".join(json.dumps(b.to_json()) + "\n" for b in synthetic_battles(400, 5, seed=0).battles.records))
    return {"model": {"name": name, "spec": {"model_type": "elo_scoring", "min_model_occurrences": 1}},
            "data": {"path": str(path), "format": "canonical", "validation_split": 0.2, "seed": 0},
            "epochs": 2, "batch_size": 64}  # fmt: skip


def test_only_rank_0_writes_and_the_others_wait_for_it(tmp_path, clean_env):
    waits: list[int] = []
    clean_env.setattr(distributed, "_barrier", lambda: waits.append(distributed.rank()))
    clean_env.setenv("WORLD_SIZE", "2")
    clean_env.setenv("RANK", "1")
    lines: list[str] = []
    store = ModelStore()
    outcome = train_from_spec(parse_training_spec(_spec(tmp_path, "ranked")), store, quiet_fit_args(lines.append)[1])
    assert outcome.rank == 1 and outcome.metrics == {} and waits == [1]
    assert outcome.saved.path == store.path("elo_scoring", "ranked") and not outcome.saved.path.exists()
    assert store.list() == [] and lines == []  # rank 1 wrote nothing and logged nothing
    clean_env.setenv("RANK", "0")
    outcome = train_from_spec(parse_training_spec(_spec(tmp_path, "ranked")), store, quiet_fit_args(lines.append)[1])
    assert outcome.rank == 0 and outcome.saved.path.is_dir() and waits == [1, 0]
    assert outcome.metrics["train_accuracy"] > 0.5
