"""Throughput and peak memory of the neural scorers on CPU (or the GPU when there is one).

Run: `uv run python benchmarks/neural.py [--repeats 3]`. Writes benchmarks/results/neural.json.
Each case runs in its own process so its peak RSS is its own:
- `embed`: sentence embeddings of the 999 Kaggle-sample prompts (real lengths) with the packaged MiniLM, cold
  (no cache) and from the on-disk cache;
- `train_<model>`: training pairs per second of the epoch loop on 20,000 planted-skill battles (prompt inputs
  precomputed, so this is the network's own cost);
- `infer_<model>`: (prompt, model) scores per second for 1,000 new prompts x 5 models, embeddings included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KAGGLE = ROOT.parent / "shared" / "data" / "kaggle_arena_55k_samples" / "train_sample_khaaliswooden.csv"
ADAMW = {"optimizer_type": "adamw", "learning_rate": 0.001}
SPECS: dict[str, dict[str, Any]] = {
    "dense_network": {"model_type": "dense_network", "hidden_dims": [256, 128, 64], "model_id_embedding_dim": 32,
                      "min_model_comparisons": 1, "optimizer": ADAMW},
    "dn_embedding": {"model_type": "dn_embedding", "hidden_dims": [256, 128, 64], "use_skip_connections": True,
                     "min_model_comparisons": 1, "embedding_model_epochs": 1, "optimizer": ADAMW,
                     "embedding_spec": {"embedding_type": "attention", "optimizer": ADAMW, "models_per_batch": 5}},
    "simple_scoring": {"model_type": "simple_scoring", "min_model_occurrences": 1, "optimizer": ADAMW},
}  # fmt: skip
CASES = ["embed", *(f"train_{m}" for m in SPECS), *(f"infer_{m}" for m in SPECS if m != "simple_scoring")]


def peak_rss_mb() -> float:
    """Peak resident memory of this process."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def case_embed() -> dict[str, float]:
    """Prompts per second, cold and cached."""
    from router_core.data.loading import load_file
    from router_neural.embeddings import TextEncoder

    prompts = list(dict.fromkeys(b.prompt or "" for b in load_file(KAGGLE)))
    with tempfile.TemporaryDirectory() as cache:
        encoder = TextEncoder("all-MiniLM-L6-v2", cache_dir=Path(cache))
        encoder.encode(["warm-up"], write_cache=False)  # model load is not throughput
        start = time.perf_counter()
        encoder.encode(prompts)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        TextEncoder("all-MiniLM-L6-v2", cache_dir=Path(cache)).encode(prompts)
        cached = time.perf_counter() - start
    chars = sum(len(p) for p in prompts) / len(prompts)
    return {"prompts": len(prompts), "mean_chars": chars, "cold_prompts_per_s": len(prompts) / cold,
            "cached_prompts_per_s": len(prompts) / cached}  # fmt: skip


def _fit(model: str, n_train: int, epochs: int) -> tuple[Any, float, Any]:
    from router_core.data.types import Battles
    from router_core.registry import scorer_class
    from router_core.specs import MODEL_SPECS
    from router_core.synthetic import PlantedSkills
    from router_core.testing import quiet_fit_args

    world = PlantedSkills.cyclic()
    train = Battles.from_records(world.battles(n_train, seed=0))
    validation = Battles.from_records(world.battles(500, seed=1))
    spec = MODEL_SPECS[model].model_validate(SPECS[model])
    options = quiet_fit_args(epochs=epochs, batch_size=256, seed=0)
    start = time.perf_counter()
    scorer = scorer_class(model)(spec).fit(train, validation, *options)
    return scorer, time.perf_counter() - start, world


def case_train(model: str) -> dict[str, float]:
    """Training pairs per second over the epoch loop (from the per-epoch timings)."""
    scorer, total, _ = _fit(model, 20_000, 3)
    seconds = [h["seconds"] for h in scorer.history_[1:]]  # the first epoch includes one-off allocation
    n_pairs = 20_000
    return {"pairs": n_pairs, "epochs": 3, "pairs_per_s": n_pairs / statistics.median(seconds),
            "fit_seconds_total": total}  # fmt: skip


def case_infer(model: str) -> dict[str, float]:
    """(prompt, model) scores per second for new prompts, embedding included; and from cached embeddings."""
    import numpy as np

    scorer, _, world = _fit(model, 2_000, 1)
    rng = np.random.default_rng(7)
    prompts = [f"{world.prompt(int(rng.integers(len(world.topics))), rng)} (variant {i})" for i in range(1000)]
    scorer.score(prompts[:8], list(world.models))  # warm-up
    start = time.perf_counter()
    scorer.score(prompts, list(world.models), batch_size=256)
    new = time.perf_counter() - start
    scorer.encoder().encode(prompts, write_cache=True)
    start = time.perf_counter()
    scorer.score(prompts, list(world.models), batch_size=256)
    cached = time.perf_counter() - start
    pairs = len(prompts) * len(world.models)
    return {"prompts": len(prompts), "models": len(world.models), "scores_per_s_new_prompts": pairs / new,
            "scores_per_s_cached_embeddings": pairs / cached}  # fmt: skip


def run_case(name: str) -> dict[str, Any]:
    """Run one case in this process and add its peak memory."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if name == "embed":
        result = case_embed()
    elif name.startswith("train_"):
        result = case_train(name.removeprefix("train_"))
    else:
        result = case_infer(name.removeprefix("infer_"))
    import torch

    result["peak_rss_mb"] = peak_rss_mb()
    if torch.cuda.is_available():
        result["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def main() -> None:
    """Run every case in a fresh process, `--repeats` times, and keep the median of each figure."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", help=argparse.SUPPRESS)  # child mode
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "neural.json"))
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case)))
        return
    results: dict[str, Any] = {}
    for name in CASES:
        runs = []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as home:
                out = subprocess.run([sys.executable, __file__, "--case", name], capture_output=True, text=True,
                                     check=True, env=os.environ | {"ROUTER_HOME": home})  # fmt: skip
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        results[name] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        print(name, json.dumps(results[name]), flush=True)
    import torch

    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                          "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()},
              "repeats": args.repeats, "results": results}  # fmt: skip
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
