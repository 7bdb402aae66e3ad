"""The HTTP server on an exported directory is torch-free: in a clean interpreter (the app in-process) and as a
real `router-cli serve` process on loopback; good requests score as `score_models` does, bad ones are 4xx JSON
errors naming the field."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from router_core.scoring import score_models
from router_runtime import load_exported

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "sentence_transformers")
BAD = [  # (body, status, field named first)
    ("{", 400, "body"),
    ("[]", 422, "body"),
    (json.dumps({"models": ["m"]}), 422, "prompts"),
    (json.dumps({"prompts": ["a", 3], "models": ["m"]}), 422, "prompts[1]"),
    (json.dumps({"prompts": ["a"], "models": []}), 422, "models"),
    (json.dumps({"prompts": ["a"], "models": ["m", "m"]}), 422, "models"),
    (json.dumps({"prompts": ["a"] * 3, "models": ["m"]}), 422, "prompts"),
    (json.dumps({"prompts": ["x" * 101], "models": ["m"]}), 422, "prompts[0]"),
    (json.dumps({"prompts": ["a"], "models": ["m"], "batch_size": 0}), 422, "batch_size"),
    (json.dumps({"prompts": ["a"], "models": ["m"], "extra": 1}), 422, "extra"),
]
PROMPTS = ["Write a haiku about autumn", "def f(x): return x"]

IN_PROCESS = """
import json, sys
from starlette.testclient import TestClient
from router_runtime.batching import BatchConfig
from router_runtime.requests import Limits
from router_runtime.server import ServerConfig, create_app
directory, prompts, bad = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
app = create_app(directory, ServerConfig(Limits(max_prompts=2, max_prompt_chars=100), BatchConfig(window_ms=1)))
with TestClient(app) as client:
    models = client.get("/models").json()["models"]
    scored = client.post("/score", json={"prompts": prompts, "models": [*models, "unseen"]}).json()
    routed = client.post("/route", json={"prompts": prompts, "models": models}).json()
    errors = []
    for body, _, _ in bad:
        response = client.post("/score", content=body, headers={"content-type": "application/json"})
        errors.append([response.status_code, response.json()["errors"][0]["field"]])
    backend = client.get("/health").json()["backend"]
heavy = [m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules]
print(json.dumps({"models": models, "scored": scored, "routed": routed, "errors": errors, "heavy": heavy,
                  "backend": backend}))
"""


def _expected(directory: Path, models: list[str]) -> np.ndarray:
    return score_models(load_exported(directory, backend="onnx"), PROMPTS, models)


def test_the_app_on_an_exported_directory_serves_without_torch(exported) -> None:
    directory = exported("dense_network")
    done = subprocess.run([sys.executable, "-c", IN_PROCESS, str(directory), json.dumps(PROMPTS), json.dumps(BAD)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [] and result["backend"] == "onnx"
    models = result["models"]
    expected = _expected(directory, [*models, "unseen"])
    np.testing.assert_allclose(np.array([result["scored"][m] for m in [*models, "unseen"]]).T, expected, atol=1e-6)
    assert [r["model"] for r in result["routed"]["routes"]] == [models[j] for j in expected[:, :-1].argmax(axis=1)]
    assert result["errors"] == [[status, field] for _, status, field in BAD]


def _mapped_libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the server's /proc/<pid>/maps")
def test_router_cli_serve_of_an_exported_directory_maps_no_torch(exported) -> None:
    directory = exported("dense_network")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "router_cli", "serve", "--model", str(directory), "--port", str(port),
               "--threads", "1", "--max-prompts", "2", "--max-prompt-chars", "100"]  # fmt: skip
    process = subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        models = httpx.get(f"{base}/models").json()["models"]
        scored = httpx.post(f"{base}/score", json={"prompts": PROMPTS, "models": models}, timeout=60).json()
        np.testing.assert_allclose(np.array([scored[m] for m in models]).T, _expected(directory, models), atol=1e-6)
        for body, status, field in BAD:
            response = httpx.post(f"{base}/score", content=body, headers={"content-type": "application/json"})
            assert (response.status_code, response.json()["errors"][0]["field"]) == (status, field), body
        maps = _mapped_libraries(process.pid)
        assert "onnxruntime" in maps  # the check sees the server's libraries at all
        assert not any(f"/{name}/" in maps for name in HEAVY), "the server process loaded torch"
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode in (0, -15), output


@pytest.mark.parametrize("flags", [["--port", "70000"], ["--max-prompts", "0"], ["--threads", "0"]])
def test_router_serve_refuses_bad_flags_before_loading(flags: list[str], capsys) -> None:
    from router_runtime.cli import main

    assert main(["--model", "anything", *flags]) == 2
    assert capsys.readouterr().err.startswith("error: ")
