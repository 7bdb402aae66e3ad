"""Hostile and damaged input through the CLI: references, spec values, option bounds, prompt files, damaged
models and data with nothing to learn. Each is refused with one line naming what is wrong, never a traceback."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from router_cli import main
from tests.cli.test_cli import ROOT, SMOKE, _train


def _spec(tmp_path: Path, patch: dict | None = None, model: dict | None = None, text: str | None = None) -> Path:
    document = json.loads(SMOKE.read_text())
    document.update(patch or {})
    document["model"].update(model or {})
    path = tmp_path / "spec.json"
    path.write_text(text if text is not None else json.dumps(document))
    return path


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


# --- references ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["elo_scoring/../../../../tmp/x", "/tmp/x", "quick*", "elo_scoring/quick?", "evil\n"])
def test_infer_and_evaluate_refuse_references_outside_the_store(ref: str, capsys, tmp_path: Path):
    code, err = _run(["infer", "--model", ref, "--models-to-score", "a", "--prompts", "p"], capsys)
    assert code == 2 and "invalid model reference" in err
    code, err = _run(["evaluate", "--model", ref, "--data", "arena_sample"], capsys)
    assert code == 2 and "invalid model reference" in err


@pytest.mark.parametrize(
    ("model", "field"),
    [({"start_state": "quick*", "spec": None}, "model.start_state"),
     ({"start_state": "elo_scoring/../../x", "spec": None}, "model.start_state"),
     ({"name": "evil\n"}, "model.name"), ({"name": "x" * 300}, "model.name"), ({"name": "a/b"}, "model.name")],
)  # fmt: skip
def test_spec_references_and_names_are_refused_at_validation(tmp_path: Path, capsys, model: dict, field: str):
    if model.get("spec", 1) is None:
        model.pop("spec")
    spec = _spec(tmp_path, model=model)
    if "start_state" in model:  # drop the spec block the smoke spec has
        document = json.loads(spec.read_text())
        del document["model"]["spec"]
        spec.write_text(json.dumps(document))
    code, err = _run(["train", "--spec-file", str(spec)], capsys)
    assert code == 2 and f"  {field}:" in err


def test_load_embedding_model_from_uses_the_same_rule(tmp_path: Path, capsys):
    document = json.loads((ROOT / "training_specs" / "dn_embedding" / "smoke.json").read_text())
    del document["model"]["spec"]["embedding_spec"]
    document["model"]["spec"]["load_embedding_model_from"] = "dn_embedding/../../etc"
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(document))
    code, err = _run(["train", "--spec-file", str(path)], capsys)
    assert code == 2 and "model.spec.load_embedding_model_from:" in err


# --- values refused at validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text_patch", "field"),
    [
        (('"min_model_occurrences": 20', '"min_model_occurrences": 20, "k_factor": Infinity'), "model.spec.k_factor"),
        (('"min_model_occurrences": 20', '"min_model_occurrences": 20, "k_factor": NaN'), "model.spec.k_factor"),
        (('"min_model_occurrences": 20', '"min_model_occurrences": 20, "initial_rating": -Infinity'),
         "model.spec.initial_rating"),
        (('"epochs": 2', '"epochs": 1e30'), "epochs"),
        (('"epochs": 2', '"epochs": 1000000000000000000000000000000'), "epochs"),
        (('"epochs": 2', '"epochs": true'), "epochs"),
        (('"epochs": 2', '"epochs": "2"'), "epochs"),
        (('"seed": 0', '"seed": -1'), "data.seed"),
        (('"batch_size": 64', '"batch_size": 99999999999'), "batch_size"),
        (('"min_model_occurrences": 20', '"min_model_occurrences": 1e30'), "model.spec.min_model_occurrences"),
        (('"validation_split": 0.2', '"validation_split": NaN'), "data.validation_split"),
    ],
)  # fmt: skip
def test_hostile_values_exit_2_naming_the_field(tmp_path: Path, capsys, router_home: Path, text_patch, field: str):
    old, new = text_patch
    text = SMOKE.read_text()
    assert old in text
    code, err = _run(["train", "--spec-file", str(_spec(tmp_path, text=text.replace(old, new)))], capsys)
    assert code == 2 and f"  {field}:" in err
    assert not (router_home / "models").exists()


def test_integers_inside_lists_are_bounded_too(tmp_path: Path, capsys):
    document = json.loads((ROOT / "training_specs" / "dense_network" / "smoke.json").read_text())
    document["model"]["spec"]["hidden_dims"] = [8, 10**12]
    code, err = _run(["train", "--spec-file", str(_spec(tmp_path, text=json.dumps(document)))], capsys)
    assert code == 2 and "model.spec.hidden_dims" in err


@pytest.mark.parametrize(("text", "message"), [("[" * 100_000 + "]" * 100_000, "nested too deeply"),
                                               ('{"model": ', "not valid JSON (line 1")])  # fmt: skip
def test_a_deep_or_broken_spec_is_one_clear_error(tmp_path: Path, capsys, text: str, message: str):
    code, err = _run(["train", "--spec-file", str(_spec(tmp_path, text=text))], capsys)
    assert code == 2 and message in err and "spec.json" in err


def test_a_spec_that_is_not_utf8_is_one_clear_error(tmp_path: Path, capsys):
    path = tmp_path / "spec.json"
    path.write_bytes(b'{"model": "\xff"}')
    code, err = _run(["train", "--spec-file", str(path)], capsys)
    assert code == 2 and f"spec file {path} is not UTF-8 text" in err


@pytest.mark.parametrize(("option", "value"), [("--bootstrap-rounds", "1000000000"), ("--bootstrap-rounds", "-1"),
                                               ("--batch-size", "0"), ("--seed", "-5"), ("--seed", "x")])  # fmt: skip
def test_evaluate_options_are_bounded(capsys, option: str, value: str):
    code = main(["evaluate", "--model", "m", "--data", "arena_sample", option, value])
    assert code == 2 and option in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"hello\n\x89PNG\r\n\x1a\n\x00\x00\xff\xd8", "line 2: not UTF-8"), (b"a\nb\x00c\n", "line 2: contains a NUL"),
     (b'{"prompt": "a"}\n{"prompt": null}\n', "line 2: expected a JSON object with a string 'prompt'"),
     (b'{"prompt": "a"}\n{"prompt": ["x"]}\n', "line 2"), (b'{"prompt": "a"}\n{"text": "b"}\n', "line 2"),
     (b'{"prompt": "a"}\n{' + b'"a":[' * 50_000 + b"\n", "line 2")],
)  # fmt: skip
def test_bad_prompts_files_exit_2_naming_file_and_line(tmp_path: Path, capsys, content: bytes, message: str):
    path = tmp_path / "prompts.txt"
    path.write_bytes(content)
    code, err = _run(["infer", "--model", "m", "--models-to-score", "a", "--prompts-file", str(path)], capsys)
    assert code == 2 and str(path) in err and message in err


# --- damaged models and data ---------------------------------------------------------------------------------------


def test_a_damaged_calibration_file_is_an_error_naming_it(router_home: Path, capsys):
    assert _train() == 0
    calibration = router_home / "models/elo_scoring/elo_smoke/calibration.json"
    calibration.write_text(json.dumps({"logistic_link": {"coef": 1.0}}))
    code, err = _run(["evaluate", "--model", "elo_scoring/elo_smoke", "--data", "arena_sample"], capsys)
    assert code == 1 and "calibration.json: damaged calibration file" in err


def test_a_damaged_model_is_named_and_does_not_hide_the_others(router_home: Path, capsys):
    assert _train() == 0
    broken = router_home / "models/elo_scoring/broken"
    broken.mkdir()
    (broken / "meta.json").write_text("{oops")
    code, err = _run(["infer", "--model", "broken", "--models-to-score", "a", "--prompts", "p"], capsys)
    assert code == 1 and "elo_scoring/broken is damaged" in err and "meta.json: not valid JSON" in err
    assert "the spec is not valid JSON" not in err
    assert main(["list"]) == 0 and "elo_scoring/elo_smoke" in capsys.readouterr().out


@pytest.mark.parametrize(("file", "text"), [("scores.json", '{"scores": {}}'), ("scores.json", "[]"),
                                          ("spec.json", '{"model": {}}'), ("scores.json", None)])  # fmt: skip
def test_damaged_state_files_are_an_error_naming_the_model(router_home: Path, capsys, file: str, text: str | None):
    assert _train() == 0
    path = router_home / "models/elo_scoring/elo_smoke" / file
    path.unlink() if text is None else path.write_text(text)
    code, err = _run(["infer", "--model", "elo_smoke", "--models-to-score", "a", "--prompts", "p"], capsys)
    assert code == 1 and "models/elo_scoring/elo_smoke" in err and "damaged" in err


def _ties_file(tmp_path: Path) -> Path:
    rows = [{"model_a": f"m{i % 5}", "model_b": f"m{(i + 1) % 5}", "winner": "tie" if i % 2 else "both_bad",
             "prompt": f"prompt {i}"} for i in range(400)]  # fmt: skip
    path = tmp_path / "ties.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize("model_type", sorted(p.name for p in (ROOT / "training_specs").iterdir() if p.is_dir()))
def test_every_model_type_refuses_data_with_nothing_to_learn(tmp_path: Path, capsys, router_home: Path, model_type: str):
    document = json.loads((ROOT / "training_specs" / model_type / "smoke.json").read_text())
    document["data"] = {"path": str(_ties_file(tmp_path)), "validation_split": 0.2}
    spec = document["model"]["spec"]
    for key in ("min_model_occurrences", "min_model_comparisons"):
        if key in spec:
            spec[key] = 1
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(document))
    code, err = _run(["train", "--spec-file", str(path), "--no-progress"], capsys)
    assert code == 1 and "nothing to learn from" in err
    assert not (router_home / "models").exists() or not any((router_home / "models").rglob("meta.json"))


# --- SIGTERM ---------------------------------------------------------------------------------------------------------

_SLOW_SAVE = """
import sys, time
import router_core.store as store
real = store._write_json
def slow(path, payload):
    print("saving", file=sys.stderr, flush=True)
    time.sleep(30)
    real(path, payload)
store._write_json = slow
from router_cli import main
sys.exit(main(["train", "--spec-file", sys.argv[1], "--no-progress"]))
"""


def test_sigterm_stops_like_ctrl_c_and_saves_nothing(tmp_path: Path, router_home: Path):
    env = os.environ | {"ROUTER_HOME": str(router_home)}
    with subprocess.Popen([sys.executable, "-c", _SLOW_SAVE, str(SMOKE)], env=env, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        deadline = time.monotonic() + 60
        while "saving" not in proc.stderr.readline():  # the save has started writing its temporary directory
            assert time.monotonic() < deadline and proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        err = proc.stderr.read()
        assert proc.wait(30) == 128 + signal.SIGTERM
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    type_dir = router_home / "models" / "elo_scoring"
    assert [p.name for p in type_dir.iterdir() if not p.name.endswith(".lock")] == []  # no model, no temporary
