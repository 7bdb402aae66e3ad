"""Start-up and end-to-end timing of the CLI (process start to exit), warm environment.

Run: `uv run python benchmarks/cli.py [--repeats 7]`. Writes benchmarks/results/cli.json.
Measures `router-cli --help` and `router-cli train` of elo_scoring on the 2023 Chatbot Arena votes
(../shared/data/arena/chatbot_arena_2023_votes.jsonl, ~21.7k battles) from process start to saved model,
and the peak RSS of that training process. Both through the venv's console script and through `uv run`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VOTES = ROOT.parent / "shared" / "data" / "arena" / "chatbot_arena_2023_votes.jsonl"
SCRIPT = Path(sys.executable).parent / "router-cli"


def spec(path: Path) -> dict:
    """elo_scoring on the votes file, the reference system's defaults."""
    return {
        "model": {"name": "bench_elo", "spec": {"model_type": "elo_scoring", "min_model_occurrences": 20}},
        "data": {"path": str(path), "validation_split": 0.2, "seed": 0},
        "epochs": 10,
        "batch_size": 128,
    }


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, cmd)
    return wall, usage.ru_maxrss / 1024  # this child's own peak (uv run: uv's, not its child's)


def measure(cmd: list[str], env: dict[str, str], repeats: int) -> dict[str, float]:
    """Median and min wall time over `repeats` runs after one warm-up."""
    timed(cmd, env)
    runs = [timed(cmd, env) for _ in range(repeats)]
    walls = [w for w, _ in runs]
    return {"median_s": statistics.median(walls), "min_s": min(walls), "peak_rss_mb": max(r for _, r in runs)}


def main() -> None:
    """Run the measurements and write the JSON result."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="router-bench-"))
    env = dict(os.environ, ROUTER_HOME=str(home), HF_HUB_OFFLINE="1")
    spec_file = home / "spec.json"
    spec_file.write_text(json.dumps(spec(VOTES)))
    uv = shutil.which("uv")
    cases = {
        "help": [str(SCRIPT), "--help"],
        "train_elo_votes": [str(SCRIPT), "train", "--spec-file", str(spec_file), "--no-progress"],
    }
    if uv:
        cases["help_via_uv_run"] = [uv, "run", "--no-sync", "router-cli", "--help"]
    results = {name: measure(cmd, env, args.repeats) for name, cmd in cases.items()}
    results["_about"] = {"battles_file": str(VOTES.relative_to(ROOT.parent)), "repeats": args.repeats,
                         "cpus": os.cpu_count(), "python": sys.version.split()[0]}
    out = ROOT / "benchmarks" / "results" / "cli.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(home, ignore_errors=True)
    for name, r in results.items():
        if not name.startswith("_"):
            print(f"{name:<18} median {r['median_s']:.3f} s  min {r['min_s']:.3f} s  peak RSS {r['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
