"""The CLI end to end: train -> list -> infer on the embedded sample, exit codes, clear errors."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from router_cli import main

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "training_specs" / "elo_scoring" / "smoke.json"


def _train(spec_path: Path = SMOKE) -> int:
    return main(["train", "--spec-file", str(spec_path), "--no-progress"])


def test_train_list_infer_roundtrip(tmp_path: Path, capsys, router_home: Path):
    assert _train() == 0
    out = capsys.readouterr().out
    assert "saved elo_scoring/elo_smoke" in out and "validation accuracy" in out
    meta = json.loads((router_home / "models/elo_scoring/elo_smoke/meta.json").read_text())
    assert 0.5 < meta["metrics"]["validation_accuracy"] <= 1 and meta["data"]["train_fingerprint"]
    assert main(["list"]) == 0 and "elo_scoring/elo_smoke" in capsys.readouterr().out

    output = tmp_path / "scores.json"
    code = main(["infer", "--model", "elo_scoring/elo_smoke", "--models-to-score", "gpt-4", "llama-13b", "never-seen",
                 "--prompts", "What is Python?", "Explain recursion", "--output-path", str(output)])
    assert code == 0
    scores = json.loads(output.read_text())
    assert list(scores) == ["gpt-4", "llama-13b", "never-seen"]
    assert all(len(v) == 2 for v in scores.values())
    assert scores["gpt-4"][0] > scores["llama-13b"][0]
    assert scores["never-seen"][0] == pytest.approx((scores["gpt-4"][0] + scores["llama-13b"][0]) / 2)


def test_infer_default_output_path_and_prompts_file(tmp_path: Path, monkeypatch, capsys):
    assert _train() == 0
    monkeypatch.chdir(tmp_path)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "a"}\n{"prompt": "b"}\n{"prompt": "c"}\n')
    capsys.readouterr()
    assert main(["infer", "--model", "elo_scoring/elo_smoke", "--models-to-score", "gpt-4", "--prompts-file", str(prompts)]) == 0
    written = Path(capsys.readouterr().out.strip())
    assert written.parent == Path("inference_outputs") and written.name.endswith("_elo_smoke.json")
    assert len(json.loads(written.read_text())["gpt-4"]) == 3


def test_spec_on_stdin(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(SMOKE.read_text()))
    assert main(["train", "--no-progress"]) == 0


def test_seed_spelling_valiation_split_trains(tmp_path: Path):
    doc = json.loads(SMOKE.read_text())
    doc["data"]["valiation_split"] = doc["data"].pop("validation_split")
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(doc))
    assert _train(path) == 0


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        (lambda d: d["model"]["spec"].update(unknown_key=1), "model.spec.unknown_key: unknown key"),
        (lambda d: d["data"].update(validation_split=1.5), "data.validation_split"),
        (lambda d: d["model"].pop("name"), "model.name: Field required"),
    ],
)
def test_invalid_spec_exits_2_naming_the_field(tmp_path: Path, capsys, patch, needle):
    doc = json.loads(SMOKE.read_text())
    patch(doc)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(doc))
    assert _train(path) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_user_mistakes_are_one_line_errors(tmp_path: Path, capsys):
    assert main(["infer", "--model", "elo_scoring/nope", "--models-to-score", "x", "--prompts", "p"]) == 2
    assert "no saved model 'elo_scoring/nope'" in capsys.readouterr().err
    assert main(["train", "--spec-file", str(tmp_path / "missing.json")]) == 2
    (tmp_path / "bad.json").write_text("{oops")
    assert main(["train", "--spec-file", str(tmp_path / "bad.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["no-such-command"]) == 2


def test_data_error_exits_1_and_debug_shows_traceback(tmp_path: Path, capsys):
    doc = json.loads(SMOKE.read_text())
    doc["data"] = {"path": str(tmp_path / "missing.jsonl")}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(doc))
    assert _train(path) == 1
    assert "data file not found" in capsys.readouterr().err
    assert main(["--debug", "train", "--spec-file", str(path)]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_start_state_continues_a_saved_model(tmp_path: Path, router_home: Path):
    assert _train() == 0
    doc = {"model": {"name": "continued", "start_state": "elo_smoke"}, "data": {"dataset": "arena_sample", "max_samples": 500},
           "epochs": 1, "batch_size": 8}
    path = tmp_path / "resume.json"
    path.write_text(json.dumps(doc))
    assert _train(path) == 0
    meta = json.loads((router_home / "models/elo_scoring/continued/meta.json").read_text())
    assert meta["start_state"] == "elo_scoring/elo_smoke"


def test_schema_command_matches_committed_schema(capsys):
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == (ROOT / "training_specs" / "schema.json").read_text()


@pytest.mark.parametrize("command", [[sys.executable, "-m", "router_cli"], [str(Path(sys.executable).parent / "router-cli")]],
                         ids=["python -m router_cli", "router-cli"])  # fmt: skip
def test_python_dash_m_and_console_script(command: list[str]):
    result = subprocess.run([*command, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "train" in result.stdout and "infer" in result.stdout


def test_validation_split_zero_trains_on_everything(tmp_path: Path, capsys):
    doc = json.loads(SMOKE.read_text())
    doc["data"] = doc["data"] | {"validation_split": 0}
    spec = tmp_path / "final.json"
    spec.write_text(json.dumps(doc))
    assert main(["train", "--spec-file", str(spec), "--no-progress"]) == 0
    assert "no validation battles (data.validation_split is 0)" in capsys.readouterr().out
    meta = json.loads(next((Path(os.environ["ROUTER_HOME"]) / "models").glob("*/*/meta.json")).read_text())
    assert meta["metrics"]["validation_accuracy"] is None and meta["metrics"]["n_validation_battles"] == 0
