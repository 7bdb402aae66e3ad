"""Fit time of every classic (prompt-agnostic) scorer on synthetic battles: 10k / 100k / 1M battles x 50 / 200 models.

Run: `uv run python benchmarks/classic.py [--repeats 3] [--sizes 10000 100000 1000000]`.
Writes benchmarks/results/classic.json. Battles come from `router_core.testing.synthetic_battles` (Davidson ties,
5% both_bad, uneven model popularity). Times are `scorer.fit` only (data generation and numba compilation are
excluded: one warm-up fit per case runs first); the median of `--repeats` fits is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from router_core.data.types import Battles
from router_core.registry import scorer_class
from router_core.specs import MODEL_SPECS
from router_core.testing import quiet_fit_args, synthetic_battles

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "classic.json"
CASES: dict[str, dict[str, Any]] = {
    "elo_scoring (1 epoch)": {"model_type": "elo_scoring"},
    "least_squares_scoring": {"model_type": "least_squares_scoring"},
    "greedy_ranking": {"model_type": "greedy_ranking"},
    "mcmf_scoring": {"model_type": "mcmf_scoring"},
    "bradley_terry_scoring (ties, sandwich CI)": {"model_type": "bradley_terry_scoring"},
    "bradley_terry_scoring (ties, sandwich + 100 bootstrap)": {
        "model_type": "bradley_terry_scoring", "confidence_intervals": "both", "bootstrap_rounds": 100,
    },  # fmt: skip
    "bradley_terry_scoring (rao_kupper, sandwich CI)": {"model_type": "bradley_terry_scoring", "tie_model": "rao_kupper"},
}


def time_fit(case: dict[str, Any], train: Battles, repeats: int) -> list[float]:
    """Wall seconds of `repeats` fits after one warm-up fit."""
    spec = MODEL_SPECS[case["model_type"]].model_validate(case | {"min_model_occurrences": 1, "print_summary": False}
                                                          if case["model_type"] != "elo_scoring"
                                                          else case | {"min_model_occurrences": 1})  # fmt: skip
    options = quiet_fit_args(epochs=1, seed=0)
    empty = Battles.from_records([])
    scorer_class(case["model_type"])(spec).fit(train, empty, *options)
    times = []
    for _ in range(repeats):
        scorer = scorer_class(case["model_type"])(spec)
        start = time.perf_counter()
        scorer.fit(train, empty, *options)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    """Run every case on every size and write the JSON result."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--models", type=int, nargs="+", default=[50, 200])
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    for n_models in args.models:
        for n_battles in args.sizes:
            train = synthetic_battles(n_battles, n_models, seed=0, spread=2.0, tie_strength=0.4, both_bad_rate=0.05,
                                      popularity=0.5).battles  # fmt: skip
            for name, case in CASES.items():
                times = time_fit(case, train, args.repeats)
                row = {"scorer": name, "n_battles": n_battles, "n_models": n_models,
                       "median_s": statistics.median(times), "min_s": min(times)}  # fmt: skip
                results.append(row)
                print(f"{name:<55} {n_battles:>9,} x {n_models:>3}  median {row['median_s']:.4f} s", flush=True)
    about = {"repeats": args.repeats, "cpus": os.cpu_count(), "python": sys.version.split()[0],
             "machine": platform.machine(), "generator": "synthetic_battles(seed=0, spread=2, tie_strength=0.4, "
             "both_bad_rate=0.05, popularity=0.5)"}  # fmt: skip
    OUT.write_text(json.dumps({"_about": about, "results": results}, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}\n")
    print(markdown_table(results))


def markdown_table(results: list[dict[str, Any]]) -> str:
    """Median fit seconds: one row per scorer, one column per (battles, models)."""
    columns = sorted({(r["n_models"], r["n_battles"]) for r in results})
    cell = {(r["scorer"], r["n_models"], r["n_battles"]): r["median_s"] for r in results}
    header = "| scorer | " + " | ".join(f"{b:,} x {m}" for m, b in columns) + " |"
    lines = [header, "|---|" + "---|" * len(columns)]
    for name in dict.fromkeys(r["scorer"] for r in results):
        lines.append(f"| {name} | " + " | ".join(f"{cell[(name, m, b)]:.3f}" for m, b in columns) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
