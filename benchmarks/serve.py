"""HTTP serving throughput and latency on loopback: `router-cli serve` under 1, 4 and 16 concurrent clients.

Run: `uv run python benchmarks/serve.py [--seconds 8] [--backends torch onnx]`. Writes benchmarks/results/serve.json.
Serves a MiniLM-based dense_network model (trained from training_specs/dense_network/smoke.json into a scratch
store unless --model names one in $ROUTER_HOME; `--exported DIR` adds the same model exported for ONNX) with
batching off, with a 0 ms window (merge only waiting requests) and with a 5 ms window. Each client sends one
request at a time, 1 prompt x 6 models: an arena prompt made unique per request so the embedding cache never
answers. Reports requests/s, p50/p99 latency, mean requests per encoder pass, and the server's peak RSS.
Clients and server share the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SMOKE_SPEC = ROOT / "training_specs" / "dense_network" / "smoke.json"
CLIENTS = (1, 4, 16)
MODES = {"no batching": ["--no-batching"], "window 0 ms": ["--batch-window-ms", "0"],
         "window 5 ms": ["--batch-window-ms", "5"]}  # fmt: skip


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: str, flags: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`router-cli serve` in a child process; returns it and its base URL once /health answers."""
    port = free_port()
    command = [sys.executable, "-m", "router_cli", "serve", "--model", model, "--port", str(port), *flags]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {' '.join(command)}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not start in 180 s")


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a running process (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def load(base: str, n_clients: int, seconds: float, prompts: list[str], models: list[str]) -> dict[str, float]:
    """`n_clients` loops, each sending one request at a time until `seconds` have passed (then they stop)."""
    latencies: list[float] = []
    counter = iter(range(10**9))

    async def client(http: httpx.AsyncClient, stop: float) -> None:
        while time.perf_counter() < stop:
            i = next(counter)
            body = {"prompts": [f"{prompts[i % len(prompts)]} (request {i})"], "models": models}
            start = time.perf_counter()
            response = await http.post("/score", json=body)
            latencies.append(time.perf_counter() - start)
            response.raise_for_status()

    limits = httpx.Limits(max_connections=n_clients, max_keepalive_connections=n_clients)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        await client(http, time.perf_counter() + 1.0)  # warm-up, not counted
        latencies.clear()
        start = time.perf_counter()
        stop = start + seconds
        await asyncio.gather(*(client(http, stop) for _ in range(n_clients)))
        wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {"requests": len(ms), "requests_per_s": len(ms) / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99))}  # fmt: skip


def bench_server(model: str, flags: list[str], env: dict[str, str], seconds: float, prompts: list[str],
                 models: list[str]) -> dict[str, object]:  # fmt: skip
    """All client counts against one server process."""
    process, base = start_server(model, flags, env)
    try:
        rows = {}
        for n in CLIENTS:
            before = httpx.get(f"{base}/health").json()["batching"]
            rows[str(n)] = asyncio.run(load(base, n, seconds, prompts, models))
            after = httpx.get(f"{base}/health").json()["batching"]
            passes = after["batches"] - before["batches"]
            rows[str(n)]["requests_per_encoder_pass"] = (after["requests"] - before["requests"]) / max(passes, 1)
            print(f"  {n:>2} clients: {rows[str(n)]}", flush=True)
        return {"clients": rows, "server_peak_rss_mb": peak_rss_mb(process.pid)}
    finally:
        process.terminate()
        process.wait(timeout=60)


def ensure_model(ref: str | None, env: dict[str, str]) -> str:
    """The model to serve: `ref`, or the smoke dense_network trained now into the scratch store."""
    if ref:
        return ref
    subprocess.run([sys.executable, "-m", "router_cli", "train", "--spec-file", str(SMOKE_SPEC), "--no-progress"],
                   env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return "dense_network/" + json.loads(SMOKE_SPEC.read_text())["model"]["name"]


def arena_prompts(n: int = 500) -> list[str]:
    """Distinct prompts of the bundled arena sample (mean a few hundred characters)."""
    from router_core.data.loading import load_embedded_sample

    return list(dict.fromkeys(b.prompt for b in load_embedded_sample() if b.prompt and len(b.prompt) < 8000))[:n]


def main() -> None:
    """Run every (backend, batching mode) and write the JSON result."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per client count")
    parser.add_argument("--model", help="TYPE/NAME in $ROUTER_HOME (default: train the smoke dense_network)")
    parser.add_argument("--exported", help="the same model exported (router-cli export), served torch-free")
    parser.add_argument("--backends", nargs="+", choices=("torch", "onnx"), default=["torch", "onnx"],
                        help="which servers to measure (onnx needs --exported)")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "serve.json"))
    args = parser.parse_args()
    scratch = None if args.model else Path(tempfile.mkdtemp(prefix="router-bench-serve-"))
    env = dict(os.environ, HF_HUB_OFFLINE="1") | ({"ROUTER_HOME": str(scratch)} if scratch else {})
    model = ensure_model(args.model, env)
    served = {"torch": model} | ({"onnx": args.exported} if args.exported else {})
    served = {backend: source for backend, source in served.items() if backend in args.backends}
    known = known_models(model, env)
    prompts = arena_prompts()
    results: dict[str, object] = {}
    for backend, source in served.items():
        for mode, flags in MODES.items():
            print(f"{backend}, {mode}", flush=True)
            results[f"{backend} / {mode}"] = bench_server(source, flags, env, args.seconds, prompts, known)
    results["_about"] = {"model": model, "exported": args.exported, "candidates_per_request": len(known),
                         "prompts_per_request": 1, "seconds_per_point": args.seconds, "cpus": os.cpu_count(),
                         "python": sys.version.split()[0], "load_average": os.getloadavg()}  # fmt: skip
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)


def known_models(model: str, env: dict[str, str], k: int = 6) -> list[str]:
    """The first `k` models the saved model was trained on (from its meta.json, without loading it)."""
    from router_core.store import ModelStore

    home = env.get("ROUTER_HOME")
    return list(ModelStore(Path(home) if home else None).resolve(model).meta["models"][:k])


if __name__ == "__main__":
    main()
