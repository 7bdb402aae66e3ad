"""A length model served next to the scorer (`--length-model`): `POST /lengths`, the chosen model's length in
`/route`, `/health` and `/models`; the request rules of /score, a 404 without a length model, clear CLI errors for
swapped flags. Fast tests use the planted fakes; the slow ones a real exported (torch-free) and saved length model."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from router_core.errors import UserError
from router_core.routing import route
from router_core.scoring import score_models
from router_runtime.batching import BatchConfig
from router_runtime.manifest import write_manifest
from router_runtime.server import ServerConfig, create_app
from tests.runtime.fakes import PlantedLengths, PlantedScorer
from tests.runtime.test_server import BAD_REQUESTS, FUZZ, JSON, LIMITS, NEAR_VALID, VALID

ROOT = Path(__file__).resolve().parents[2]
REF = "dn_embedding_length_prediction/length"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(PlantedScorer, ServerConfig(LIMITS, BatchConfig(window_ms=0)), length_model=PlantedLengths)
    with TestClient(app, raise_server_exceptions=True) as test_client:  # a 500 raises in the test
        yield test_client


@pytest.fixture(scope="module")
def scorer_only() -> Iterator[TestClient]:
    with TestClient(create_app(PlantedScorer, ServerConfig(LIMITS)), raise_server_exceptions=True) as test_client:
        yield test_client


def test_lengths_are_the_length_model_s_predictions_with_its_tokenizer(client: TestClient) -> None:
    prompts, models = ["What is Python?", "Write a haiku", "What is Python?"], ["beta", "never-seen", "alpha"]
    response = client.post("/lengths", json={"prompts": prompts, "models": models, "batch_size": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tokenizer"] == PlantedLengths.tokenizer and list(body["lengths"]) == models
    expected = PlantedLengths().predict_lengths(prompts, models)
    np.testing.assert_array_equal(np.array([body["lengths"][m] for m in models]).T, expected)
    assert body["lengths"]["never-seen"] == [100.0] * 3  # the fallback, not the scorer's mean-of-candidates fill


def test_route_carries_the_chosen_model_s_predicted_length(client: TestClient, scorer_only: TestClient) -> None:
    prompts, models = [f"prompt {i}" for i in range(4)], ["alpha", "beta", "gamma"]
    routes = client.post("/route", json={"prompts": prompts, "models": models}).json()["routes"]
    index, best = route(score_models(PlantedScorer(), prompts, models))
    lengths = PlantedLengths().predict_lengths(prompts, models)
    assert routes == [{"model": models[j], "score": s, "length": lengths[i, j]}
                      for i, (j, s) in enumerate(zip(index.tolist(), best.tolist(), strict=True))]  # fmt: skip
    plain = scorer_only.post("/route", json={"prompts": prompts, "models": models}).json()["routes"]
    assert plain == [{"model": r["model"], "score": r["score"]} for r in routes]  # without a length model: unchanged


def test_health_and_models_describe_the_length_model(client: TestClient, scorer_only: TestClient) -> None:
    health = client.get("/health").json()
    described = health["length_model"]
    assert described["kind"] == "length" and described["tokenizer"] == "planted-tokenizer"
    assert described["predictor"] == "PlantedLengths" and described["known_models"] == 3
    assert described["batching"]["requests"] >= 1  # /lengths goes through its own batcher
    assert client.get("/models").json() == {"models": ["alpha", "beta", "gamma"],
                                            "length_model": {"tokenizer": "planted-tokenizer",
                                                             "models": ["alpha", "beta", "gamma"]}}  # fmt: skip
    assert "length_model" not in scorer_only.get("/health").json()
    assert scorer_only.get("/models").json() == {"models": ["alpha", "beta", "gamma"]}


def test_lengths_without_a_length_model_is_a_404_naming_the_flag(scorer_only: TestClient) -> None:
    response = scorer_only.post("/lengths", json={"prompts": ["hi"], "models": ["alpha"]})
    assert response.status_code == 404
    (error,) = response.json()["errors"]
    assert error["field"] == "path" and "--length-model" in error["message"]


@pytest.mark.parametrize(("body", "status", "field"), BAD_REQUESTS)
def test_bad_length_requests_are_4xx_naming_the_field(client: TestClient, body, status: int, field: str) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post("/lengths", content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["field"] == field


@settings(FUZZ, max_examples=80)
@given(body=JSON | NEAR_VALID | VALID, path=st.sampled_from(["/lengths", "/route"]))
def test_no_json_body_is_a_server_error_with_a_length_model(client: TestClient, body, path: str) -> None:
    response = client.post(path, content=json.dumps(body).encode())
    assert response.status_code in (200, 413, 422), response.text
    if response.status_code != 200:
        assert response.json()["errors"][0]["field"]


def _fake_export(directory: Path, kind: str) -> Path:
    """A minimal valid export: a score table (a real, torch-free scorer) or a length-kind manifest (enough for
    telling the kinds apart; not loadable as a length model)."""
    directory.mkdir()
    if kind == "score_table":
        (directory / "scores.json").write_text(json.dumps({"scores": {"alpha": 0.5, "beta": -0.5}}))
        write_manifest(directory, {"kind": kind, "model_type": "elo_scoring"}, ["scores.json"])
    else:
        (directory / "length.json").write_text("{}")
        write_manifest(directory, {"kind": kind, "model_type": "dn_embedding_length_prediction"}, ["length.json"])
    return directory


@pytest.fixture
def no_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the server started although the flags were wrong")

    monkeypatch.setattr("uvicorn.run", refuse)


@pytest.mark.usefixtures("no_uvicorn")
def test_swapped_exported_models_are_clear_errors_naming_the_flag(tmp_path: Path, capsys) -> None:
    from router_cli import main

    scorer, lengths = _fake_export(tmp_path / "scorer", "score_table"), _fake_export(tmp_path / "lengths", "length")
    assert main(["serve", "--model", str(lengths)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --model ") and "is a length model" in err and "--length-model" in err
    assert "Traceback" not in err
    assert main(["serve", "--model", str(scorer), "--length-model", str(scorer)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --length-model ") and "is a scorer" in err and "--model" in err
    assert main(["serve", "--model", str(scorer), "--length-model", str(tmp_path / "absent")]) == 2
    assert capsys.readouterr().err.startswith("error: --length-model ")


@pytest.mark.usefixtures("no_uvicorn")
def test_a_saved_scorer_as_length_model_is_a_clear_error(capsys) -> None:
    from router_cli import main

    assert main(["train", "--spec-file", "training_specs/elo_scoring/smoke.json", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["serve", "--model", "elo_scoring/elo_smoke", "--length-model", "elo_scoring/elo_smoke"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --length-model elo_scoring/elo_smoke is a scorer") and "Traceback" not in err
    assert main(["serve", "--model", "elo_scoring/elo_smoke", "--length-model", "elo_scoring/absent"]) == 2
    assert "error: --length-model elo_scoring/absent: no saved model" in capsys.readouterr().err


def test_the_app_refuses_a_length_model_as_the_scorer(tmp_path: Path) -> None:
    lengths = _fake_export(tmp_path / "lengths", "length")
    with pytest.raises(UserError, match="exported length model"), TestClient(create_app(str(lengths))):
        pass


@pytest.mark.slow  # trains and exports a length model (~1 min on 2 cores, shared with test_export_length)
def test_an_exported_length_model_serves_its_own_predictions(exported_length) -> None:
    from router_runtime.exported import load_exported_length

    directory = exported_length()
    predictor = load_exported_length(directory, threads=1)
    prompts = ["Please elaborate on subject number 3", "Tell me about subject number 7", ""]
    models = [*predictor.known_models, "never-seen"]
    app = create_app(PlantedScorer, ServerConfig(threads=1), length_model=str(directory))
    with TestClient(app, raise_server_exceptions=True) as served:
        body = served.post("/lengths", json={"prompts": prompts, "models": models}).json()
        assert body["tokenizer"] == predictor.tokenizer and list(body["lengths"]) == models
        expected = predictor.predict_lengths(prompts, models)
        np.testing.assert_allclose(np.array([body["lengths"][m] for m in models]).T, expected, rtol=1e-6)
        routes = served.post("/route", json={"prompts": prompts, "models": ["alpha", "verbose"]}).json()["routes"]
        both = predictor.predict_lengths(prompts, ["alpha", "verbose"])
        chosen = [["alpha", "verbose"].index(r["model"]) for r in routes]
        np.testing.assert_allclose([r["length"] for r in routes], both[np.arange(3), chosen], rtol=1e-6)
        described = served.get("/health").json()["length_model"]
        assert described["backend"] == "onnx" and described["predictor"] == "ExportedLengthPredictor"


TORCH_FREE = """
import json, sys
from starlette.testclient import TestClient
from router_runtime.server import ServerConfig, create_app
app = create_app(sys.argv[1], ServerConfig(threads=1), length_model=sys.argv[2])
with TestClient(app) as client:
    lengths = client.post("/lengths", json={"prompts": ["Please elaborate on subject number 1"],
                                            "models": ["verbose", "plain"]}).json()
    routes = client.post("/route", json={"prompts": ["hello"], "models": ["alpha", "beta"]}).json()
heavy = [m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules]
print(json.dumps({"heavy": heavy, "lengths": lengths, "routes": routes}))
"""


@pytest.mark.slow  # the length export (shared) and a fresh interpreter loading ONNX Runtime
def test_serving_an_exported_length_model_loads_no_torch(exported_length, tmp_path: Path) -> None:
    scorer = _fake_export(tmp_path / "scorer", "score_table")
    done = subprocess.run([sys.executable, "-c", TORCH_FREE, str(scorer), str(exported_length())], cwd=ROOT,
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    (verbose,), (plain,) = result["lengths"]["lengths"]["verbose"], result["lengths"]["lengths"]["plain"]
    assert verbose > plain > 0  # the planted x2 of the verbose model
    (entry,) = result["routes"]["routes"]
    assert entry["model"] == "alpha" and entry["score"] == 0.5 and entry["length"] > 0


@pytest.mark.slow  # trains a length model (~1 min on 2 cores, shared with test_export_length)
@pytest.mark.usefixtures("no_uvicorn")
def test_a_saved_length_model_serves_by_its_name_and_is_refused_as_the_scorer(length_store, monkeypatch,
                                                                               capsys) -> None:  # fmt: skip
    from router_cli import main
    from router_core.pipeline import load_length_predictor

    monkeypatch.setenv("ROUTER_HOME", str(length_store.home))
    prompts, models = ["Please elaborate on subject number 3", "hi"], ["verbose", "plain", "never-seen"]
    with TestClient(create_app(PlantedScorer, length_model=REF), raise_server_exceptions=True) as served:
        body = served.post("/lengths", json={"prompts": prompts, "models": models}).json()
        assert served.get("/health").json()["length_model"]["model"] == REF
    expected = load_length_predictor(length_store.resolve(REF)).predict_lengths(prompts, models)
    np.testing.assert_allclose(np.array([body["lengths"][m] for m in models]).T, expected, rtol=1e-5)
    assert main(["serve", "--model", REF]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --model {REF} is a length model") and "Traceback" not in err
