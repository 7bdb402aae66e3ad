"""The HTTP server in-process (Starlette TestClient): the endpoints, the seed's output format, and that every
bad request is a 4xx naming the field; nothing a client sends is a 500 (a table, then hypothesis)."""

import json
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from router_cli import main
from router_core.routing import route
from router_core.scoring import score_models
from router_runtime.batching import BatchConfig
from router_runtime.requests import Limits
from router_runtime.server import ServerConfig, create_app
from tests.runtime.fakes import PlantedScorer

LIMITS = Limits(max_prompts=4, max_prompt_chars=50, max_models=3, max_model_chars=12, max_batch_size=64,
                max_body_bytes=8192)  # fmt: skip


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(PlantedScorer, ServerConfig(LIMITS, BatchConfig(window_ms=0)))
    with TestClient(app, raise_server_exceptions=True) as test_client:  # a 500 raises in the test
        yield test_client


def test_score_returns_the_seed_format_with_the_unknown_model_fallback(client: TestClient) -> None:
    prompts, models = ["What is Python?", "Write a haiku", "What is Python?"], ["beta", "never-seen", "alpha"]
    response = client.post("/score", json={"prompts": prompts, "models": models})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == models and all(len(v) == len(prompts) for v in body.values())
    expected = score_models(PlantedScorer(), prompts, models)
    np.testing.assert_array_equal(np.array([body[m] for m in models]).T, expected)


def test_route_returns_the_best_model_per_prompt(client: TestClient) -> None:
    prompts, models = [f"prompt {i}" for i in range(4)], ["alpha", "beta", "gamma"]
    response = client.post("/route", json={"prompts": prompts, "models": models, "batch_size": 2})
    assert response.status_code == 200
    index, best = route(score_models(PlantedScorer(), prompts, models))
    assert response.json() == {"routes": [{"model": models[i], "score": s} for i, s in zip(index, best.tolist())]}


def test_models_and_health(client: TestClient) -> None:
    assert client.get("/models").json() == {"models": ["alpha", "beta", "gamma"]}
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["known_models"] == 3
    assert health["limits"]["max_prompts"] == 4 and health["batching"]["window_ms"] == 0


OK = {"prompts": ["hi"], "models": ["alpha"]}
BAD_REQUESTS = [
    # (body as sent, status, field named in the first error)
    (b"", 400, "body"),
    (b"{", 400, "body"),
    (b"\xff\xfe\x00garbage", 400, "body"),
    (b"[" * 5000, 400, "body"),
    (b'{"prompts": ["a"], "models": ["alpha"], "batch_size": 1' + b"0" * 5000 + b"}", 400, "body"),
    (b"[]", 422, "body"),
    (b'"text"', 422, "body"),
    (b"null", 422, "body"),
    (b"{}", 422, "prompts"),
    ({"models": ["alpha"]}, 422, "prompts"),
    ({"prompts": ["a"]}, 422, "models"),
    ({"prompts": [], "models": ["alpha"]}, 422, "prompts"),
    ({"prompts": "a", "models": ["alpha"]}, 422, "prompts"),
    ({"prompts": ["a", 3], "models": ["alpha"]}, 422, "prompts[1]"),
    ({"prompts": ["a"] * 5, "models": ["alpha"]}, 422, "prompts"),
    ({"prompts": ["x" * 51], "models": ["alpha"]}, 422, "prompts[0]"),
    ({"prompts": ["a"], "models": []}, 422, "models"),
    ({"prompts": ["a"], "models": ["alpha", None]}, 422, "models[1]"),
    ({"prompts": ["a"], "models": ["alpha", "beta", "gamma", "delta"]}, 422, "models"),
    ({"prompts": ["a"], "models": ["m" * 13]}, 422, "models[0]"),
    ({"prompts": ["a"], "models": ["  "]}, 422, "models[0]"),
    ({"prompts": ["a"], "models": ["alpha", "beta", "alpha"]}, 422, "models"),
    (OK | {"batch_size": 0}, 422, "batch_size"),
    (OK | {"batch_size": 65}, 422, "batch_size"),
    (OK | {"batch_size": 2.5}, 422, "batch_size"),
    (OK | {"batch_size": True}, 422, "batch_size"),
    (OK | {"batch_size": "8"}, 422, "batch_size"),
    (OK | {"threshold": 0.5}, 422, "threshold"),
    (b'{"prompts": ["\\ud800"], "models": ["alpha"]}', 422, "prompts[0]"),
    (b'{"prompts": ["a"], "models": ["alpha"], "batch_size": NaN}', 422, "batch_size"),
    (json.dumps({"prompts": ["a" * 40] * 250, "models": ["alpha"]}).encode(), 413, "body"),
]


@pytest.mark.parametrize("path", ["/score", "/route"])
@pytest.mark.parametrize(("body", "status", "field"), BAD_REQUESTS)
def test_bad_requests_are_4xx_naming_the_field(client: TestClient, path: str, body, status: int, field: str) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(path, content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    errors = response.json()["errors"]
    assert errors[0]["field"] == field and errors[0]["message"]


def test_a_body_over_the_limit_without_content_length_is_refused(client: TestClient) -> None:
    chunks = (b'{"prompts": ["' + b"a" * 1000 for _ in range(10))  # streamed: no Content-Length header
    response = client.post("/score", content=chunks)
    assert response.status_code == 413 and response.json()["errors"][0]["field"] == "body"


@pytest.mark.parametrize(("method", "path", "status", "field"),
                         [("GET", "/nowhere", 404, "path"), ("GET", "/score", 405, "method"),
                          ("POST", "/health", 405, "method"), ("DELETE", "/models", 405, "method")])  # fmt: skip
def test_unknown_paths_and_methods_are_json_errors(client: TestClient, method: str, path: str, status: int,
                                                   field: str) -> None:  # fmt: skip
    response = client.request(method, path)
    assert response.status_code == status and response.json()["errors"][0]["field"] == field


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
TEXT = st.text(max_size=60)  # includes surrogates, NUL, anything over the 50-character limit
NEAR_VALID = st.fixed_dictionaries(
    {"prompts": st.lists(TEXT, max_size=6) | JSON, "models": st.lists(st.sampled_from(["alpha", "zeta", ""]) | TEXT,
                                                                       max_size=5) | JSON},
    optional={"batch_size": st.integers(-5, 100) | JSON, "extra": JSON},
)  # fmt: skip
VALID = st.fixed_dictionaries(
    {"prompts": st.lists(st.text(st.characters(exclude_categories=["Cs"]), max_size=50), min_size=1, max_size=4),
     "models": st.lists(st.sampled_from(["alpha", "beta", "gamma", "zeta", "новая модель"]), min_size=1, max_size=3,
                        unique=True)},
    optional={"batch_size": st.integers(1, 64)},
)  # fmt: skip
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


@FUZZ
@given(body=JSON | NEAR_VALID | VALID, path=st.sampled_from(["/score", "/route"]))
def test_no_json_body_is_a_server_error(client: TestClient, body, path: str) -> None:
    response = client.post(path, content=json.dumps(body).encode())  # lone surrogates travel as \udXXX escapes
    assert response.status_code in (200, 413, 422), response.text
    if response.status_code != 200:
        assert response.json()["errors"][0]["field"]


@FUZZ
@given(body=st.binary(max_size=300))
def test_no_byte_string_is_a_server_error(client: TestClient, body: bytes) -> None:
    response = client.post("/score", content=body)
    assert response.status_code in (200, 400, 413, 422), response.text


@FUZZ
@given(body=VALID)
def test_every_valid_request_is_scored_as_score_models_would(client: TestClient, body: dict) -> None:
    response = client.post("/score", json=body)
    assert response.status_code == 200, response.text
    expected = score_models(PlantedScorer(), body["prompts"], body["models"])
    assert response.json() == {m: expected[:, j].tolist() for j, m in enumerate(body["models"])}


def test_a_model_from_the_store_is_served_by_its_name() -> None:
    assert main(["train", "--spec-file", "training_specs/elo_scoring/smoke.json", "--no-progress"]) == 0
    with TestClient(create_app("elo_scoring/elo_smoke")) as store_client:
        known = store_client.get("/models").json()["models"]
        assert "gpt-4" in known
        scores = store_client.post("/score", json={"prompts": ["hello"], "models": ["gpt-4", "llama-13b"]}).json()
        assert scores["gpt-4"][0] > scores["llama-13b"][0]  # as in the CLI's infer test on the same data


def test_a_missing_model_fails_at_start_up() -> None:
    from router_core.errors import UserError

    with pytest.raises(UserError, match="no saved model"), TestClient(create_app("elo_scoring/absent")):
        pass


def test_a_broken_model_is_a_json_500_and_the_server_keeps_serving() -> None:
    app = create_app(lambda: PlantedScorer(fail_on="boom"))
    with TestClient(app, raise_server_exceptions=False) as broken:
        response = broken.post("/score", json={"prompts": ["boom"], "models": ["alpha"]})
        assert response.status_code == 500 and response.json() == {
            "errors": [{"field": None, "message": "internal server error"}]}
        assert broken.post("/score", json={"prompts": ["fine"], "models": ["alpha"]}).status_code == 200
