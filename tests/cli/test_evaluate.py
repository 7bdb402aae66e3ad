"""`router-cli evaluate`: one model (flat JSON), several side by side, data by path or dataset name, errors."""

import json
from pathlib import Path

import pytest

from router_cli import main
from router_core.data.loading import load_file
from router_core.data.types import Battle
from router_core.pipeline import load_scorer
from router_core.store import ModelStore

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "training_specs"


@pytest.fixture
def trained(router_home: Path) -> list[str]:
    """least squares and Bradley-Terry smoke models (seconds on CPU)."""
    for model_type in ("least_squares_scoring", "bradley_terry_scoring"):
        assert main(["train", "--spec-file", str(SPECS / model_type / "smoke.json"), "--no-progress"]) == 0
    return ["least_squares_scoring/least_squares_smoke", "bradley_terry_scoring/bradley_terry_smoke"]


def test_one_model_writes_flat_metrics(trained: list[str], router_home: Path, fixtures: Path, tmp_path: Path, capsys):
    assert (router_home / "models" / trained[0] / "calibration.json").is_file()
    out = tmp_path / "eval.json"
    votes = fixtures / "chatbot_arena_votes.jsonl"
    assert main(["evaluate", "--model", trained[0], "--data", str(votes), "--output-path", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["model"] == trained[0] and result["data"] == [str(votes)]
    assert 0 <= result["pairwise_accuracy"] <= 1 and 0 < result["log_loss"] < 1.5 and result["n_pairs"] > 10
    known = set(load_scorer(ModelStore().resolve(trained[0])).index_)
    unseen = sum(b.model_a not in known or b.model_b not in known for b in load_file(votes))
    assert result["n_battles"] == 60 and result["n_skipped"] == unseen and result["probabilities"] == "logistic_link"
    assert "pairwise_accuracy" in capsys.readouterr().out


def test_several_models_side_by_side_on_a_dataset_name(trained: list[str], tmp_path: Path, capsys):
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--model", *trained, "--data", "arena_sample", "--output-path", str(out),
                 "--bootstrap-rounds", "50"]) == 0  # fmt: skip
    models = json.loads(out.read_text())["models"]
    assert list(models) == trained
    bt = models[trained[1]]
    assert bt["probabilities"] == "model" and bt["tie_log_loss"] > 0
    assert models[trained[0]]["n_pairs"] == bt["n_pairs"] > 1000
    header = capsys.readouterr().out.splitlines()[0]
    assert trained[0] in header and trained[1] in header


def test_per_category_table(trained: list[str], tmp_path: Path, capsys):
    rows = [Battle(model_a="gpt-4", model_b="llama-13b", winner="model_a", categories=("code",)),
            Battle(model_a="llama-13b", model_b="gpt-4", winner="model_b", categories=("code", "math")),
            Battle(model_a="llama-13b", model_b="gpt-4", winner="model_a", categories=("math",)),
            Battle(model_a="gpt-4", model_b="never-seen", winner="model_a", categories=("poetry",))]  # fmt: skip
    data = tmp_path / "battles.jsonl"
    data.write_text("".join(json.dumps(r.to_json()) + "\n" for r in rows))
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--model", trained[1], "--data", str(data), "--output-path", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["n_pairs"] == 3 and result["n_skipped"] == 1
    per_category = result["per_category"]
    assert set(per_category) == {"code", "math"}  # poetry has no battle between known models
    assert per_category["code"]["n_pairs"] == 2 and per_category["code"]["pairwise_accuracy"] == 1.0
    assert per_category["math"]["n_pairs"] == 2 and per_category["math"]["pairwise_accuracy"] == 0.5
    assert "per category" in capsys.readouterr().out


def test_bad_data_and_unknown_model_are_clear_errors(trained: list[str], capsys):
    assert main(["evaluate", "--model", trained[0], "--data", "no_such_file.jsonl"]) == 2
    assert "neither a file nor a dataset name" in capsys.readouterr().err
    assert main(["evaluate", "--model", "least_squares_scoring/nope", "--data", "arena_sample"]) == 2
    assert "no saved model" in capsys.readouterr().err
    assert main(["evaluate", "--model", trained[0], "--data", "arena_sample", "--format", "xml"]) == 2


def test_all_pairs_coverage_and_prompt_sensitivity_of_a_prompt_agnostic_model(trained: list[str], fixtures: Path,
                                                                               tmp_path: Path, capsys):  # fmt: skip
    out = tmp_path / "eval.json"
    votes = fixtures / "chatbot_arena_votes.jsonl"
    assert main(["evaluate", "--model", trained[1], "--data", str(votes), "--output-path", str(out),
                 "--prompt-sensitivity", "--bootstrap-rounds", "0"]) == 0  # fmt: skip
    result = json.loads(out.read_text())
    decisive = sum(b.winner in ("model_a", "model_b") for b in load_file(votes))
    assert result["all_pairs"]["n_pairs"] == decisive >= result["n_pairs"]
    assert result["coverage"] == pytest.approx(result["n_pairs"] / decisive)
    assert result["prompt_sensitivity"]["accuracy_drop"] == 0.0  # prompt-agnostic by construction
    assert "prompt_sensitivity.accuracy_drop" in capsys.readouterr().out
