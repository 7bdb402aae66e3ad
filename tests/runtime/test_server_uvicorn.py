"""The server under a real uvicorn on 127.0.0.1 with concurrent clients, and `router-cli serve` as a process."""

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn

from router_cli import main
from router_core.scoring import score_models
from router_runtime.batching import BatchConfig
from router_runtime.server import ServerConfig, create_app
from tests.runtime.fakes import PlantedScorer

ROOT = Path(__file__).resolve().parents[2]


class SlowScorer(PlantedScorer):
    """Takes 20 ms a call, like a small encoder pass, so concurrent requests pile up behind it."""

    def score(self, prompts, models, batch_size=128):
        time.sleep(0.02)
        return super().score(prompts, models, batch_size)


@pytest.fixture
def served() -> Iterator[tuple[str, SlowScorer]]:
    """A uvicorn server on a loopback port chosen by the OS, in a thread; stopped at the end of the test."""
    scorer = SlowScorer()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(lambda: scorer, ServerConfig(batching=BatchConfig(window_ms=2))),
                            log_level="warning", lifespan="on")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", scorer
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()


def _client_loop(base: str, client_id: int, n_requests: int) -> list[tuple[list[str], list[str], dict]]:
    """`n_requests` /score calls, then stop; returns what was sent and received."""
    models = [["alpha", "beta"], ["gamma", "unknown"], ["beta", "alpha", "gamma"]][client_id % 3]
    seen = []
    with httpx.Client(base_url=base, timeout=30) as http:
        for i in range(n_requests):
            prompts = [f"client {client_id} prompt {i}", "a prompt every client sends"]
            response = http.post("/score", json={"prompts": prompts, "models": models})
            assert response.status_code == 200, response.text
            seen.append((prompts, models, response.json()))
    return seen


def test_concurrent_clients_get_their_own_scores_and_requests_are_merged(served) -> None:
    base, scorer = served
    with ThreadPoolExecutor(8) as pool:
        results = [r for rs in pool.map(lambda c: _client_loop(base, c, 12), range(8)) for r in rs]
    assert len(results) == 8 * 12
    reference = PlantedScorer()
    for prompts, models, body in results:
        expected = score_models(reference, prompts, models)
        np.testing.assert_array_equal(np.array([body[m] for m in models]).T, expected)
    health = httpx.get(f"{base}/health").json()["batching"]
    assert health["requests"] == 8 * 12
    assert health["largest_batch"] > 1 and health["batches"] < health["requests"]


def test_router_cli_serve_runs_a_saved_model_on_loopback(tmp_path: Path) -> None:
    assert main(["train", "--spec-file", str(ROOT / "training_specs/elo_scoring/smoke.json"), "--no-progress"]) == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "router_cli", "serve", "--model", "elo_scoring/elo_smoke", "--port", str(port),
               "--batch-window-ms", "1", "--max-prompts", "2"]  # fmt: skip
    process = subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        routes = httpx.post(f"{base}/route", json={"prompts": ["hi"], "models": ["llama-13b", "gpt-4"]}).json()
        assert routes == {"routes": [{"model": "gpt-4", "score": pytest.approx(routes["routes"][0]["score"])}]}
        too_many = httpx.post(f"{base}/score", json={"prompts": ["a", "b", "c"], "models": ["gpt-4"]})
        assert too_many.status_code == 422 and too_many.json()["errors"][0]["field"] == "prompts"
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
    # uvicorn shuts down cleanly on SIGTERM: a graceful stop, exit 0 (or the re-raised signal, where the CLI's own
    # SIGTERM handler is not installed)
    assert process.returncode in (0, -15) and "Application shutdown complete" in output, output
    assert "serving elo_scoring/elo_smoke (" in output


@pytest.mark.parametrize("flags", [["--port", "70000"], ["--max-prompts", "0"], ["--batch-window-ms", "-1"]])
def test_serve_refuses_bad_flags_before_loading(flags: list[str], capsys) -> None:
    assert main(["serve", "--model", "elo_scoring/anything", *flags]) == 2
    assert "error:" in capsys.readouterr().err


def test_serve_flag_defaults_are_the_server_defaults() -> None:
    from router_cli import build_parser
    from router_runtime.batching import BatchConfig
    from router_runtime.requests import Limits

    args = build_parser().parse_args(["serve", "--model", "x"])
    assert {name: getattr(args, name) for name in vars(Limits())} == vars(Limits())
    assert (args.batch_window_ms, args.max_batch_prompts) == (BatchConfig().window_ms, BatchConfig().max_prompts)
