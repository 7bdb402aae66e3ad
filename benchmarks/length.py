"""Held-out accuracy, fit time and inference throughput of dn_embedding_length_prediction on real answers.

Run: `uv run python benchmarks/length.py [--seeds 0 1 2] [--epochs 60]`. Writes benchmarks/results/length.json.
`--folds K` instead cross-validates (K folds grouped by prompt, the metrics pooled over every held-out answer) and
writes benchmarks/results/length_cv.json.
Data: the MT-Bench turn-1 battles with answers and the Kaggle 55k sample (both in ../shared/data). Each seed splits
each dataset grouped by prompt (30% of battles held out, no prompt on both sides), carves 15% of the training
battles (again by prompt) for choosing the epoch, trains one model on both training parts, and scores every held-out
answer (ties and both_bad included; an MT-Bench answer shown to several judges counts once) against the model's
per-model median baseline. Lengths are cl100k_base tokens. Throughput: lengths per second for 500 new prompts x
every known model, prompt embeddings included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SOURCES = {"mt_bench": DATA / "mt_bench_human" / "battles_turn1_with_text.jsonl",
           "kaggle": DATA / "kaggle_arena_55k_samples" / "train_sample_khaaliswooden.csv"}  # fmt: skip
ADAMW = {"optimizer_type": "adamw", "learning_rate": 0.001, "weight_decay": 0.01}
SPEC: dict[str, Any] = {
    "model_type": "dn_embedding_length_prediction", "tokenizer": "cl100k_base", "hidden_dims": [128, 64],
    "input_proj_dim": 32, "model_id_embedding_dim": 16, "dropout": 0.2, "embedding_model_epochs": 5,
    "embedding_spec": {"embedding_type": "attention", "h_emb": 64, "h_scalar": 16, "h_pair": 64, "d_out": 32,
                       "pair_mlp_layers": 2, "num_attention_heads": 2, "pairs_per_model": 16, "models_per_batch": 16,
                       "embeddings_per_model": 2, "optimizer": {"optimizer_type": "adamw", "learning_rate": 0.001}},
    "optimizer": ADAMW,
}  # fmt: skip
HELD_OUT, SELECTION = 0.3, 0.15


def fit(train: list[Any], seed: int, epochs: int, batch_size: int) -> tuple[Any, dict[str, Any]]:
    """Carve the selection battles from `train` (grouped by prompt), fit the benchmark's spec on the rest."""
    from router_core.data.prepare import split_battles
    from router_core.registry import scorer_class
    from router_core.specs import MODEL_SPECS
    from router_core.testing import quiet_fit_args

    inner = split_battles(train, SELECTION, seed + 1000)
    spec = MODEL_SPECS["dn_embedding_length_prediction"].model_validate(SPEC)
    predictor: Any = scorer_class("dn_embedding_length_prediction")(spec)
    began = time.perf_counter()
    predictor.fit(inner.train, inner.validation, *quiet_fit_args(epochs=epochs, batch_size=batch_size, seed=seed))
    return predictor, {"fit_seconds": time.perf_counter() - began, "best_epoch": predictor.loop_.best_epoch,
                       "n_train_battles": len(inner.train), "n_selection_battles": len(inner.validation)}  # fmt: skip


def run_seed(seed: int, epochs: int, batch_size: int) -> dict[str, Any]:
    """Split, fit, measure for one seed."""
    from router_core.data.loading import load_file
    from router_core.data.prepare import split_battles
    from router_core.data.types import Battles
    from router_core.length import evaluate_lengths

    train, tests = [], {}
    for name, path in SOURCES.items():
        split = split_battles(load_file(path), HELD_OUT, seed)
        train += split.train.records
        tests[name] = split.validation
    predictor, result = fit(train, seed, epochs, batch_size)
    tests["both"] = Battles.from_records([r for t in tests.values() for r in t.records])
    result["held_out"] = {name: evaluate_lengths(predictor, battles) for name, battles in tests.items()}
    result["throughput"] = throughput(predictor, seed)
    return result


def run_folds(k: int, seed: int, epochs: int, batch_size: int) -> dict[str, Any]:
    """k-fold cross-validation grouped by prompt: fold i of every dataset is held out together, a model is fitted
    on the other folds of both, and every answer is predicted by the one model that did not see its prompt. The
    metrics pool the k held-out folds of each dataset (`length_report`), so each covers every answer once."""
    from router_core.data.loading import load_file
    from router_core.data.prepare import grouped_folds
    from router_core.data.types import Battles
    from router_core.length import length_predictions, length_report

    data = {name: load_file(path) for name, path in SOURCES.items()}
    fold_of = {name: grouped_folds(records, k, seed) for name, records in data.items()}
    held: dict[str, list[Any]] = {name: [] for name in data}
    runs = []
    for fold in range(k):
        train = [r for name, records in data.items() for r, f in zip(records, fold_of[name], strict=True) if f != fold]
        predictor, run = fit(train, seed + fold, epochs, batch_size)
        run["held_out"] = {}
        for name, records in data.items():
            test = Battles.from_records(r for r, f in zip(records, fold_of[name], strict=True) if f == fold)
            held[name].append(length_predictions(predictor, test))
            run["held_out"][name] = length_report([held[name][-1]], predictor.tokenizer)
        runs.append(run | {"fold": fold})
        print(f"fold {fold}:", json.dumps(run), flush=True)
    tokenizer = SPEC["tokenizer"]
    pooled = {name: length_report(parts, tokenizer) for name, parts in held.items()}
    pooled["both"] = length_report([p for parts in held.values() for p in parts], tokenizer)
    return {"folds": k, "seed": seed, "pooled": pooled, "runs": runs}


def throughput(predictor: Any, seed: int, n_prompts: int = 500) -> dict[str, float]:
    """Predicted lengths per second for new prompts (embedding included) x every known model."""
    prompts = [f"Benchmark prompt {seed}-{i}: explain topic number {i} in some detail." for i in range(n_prompts)]
    models = list(predictor.known_models)
    began = time.perf_counter()
    predictor.predict_lengths(prompts, models, 128)
    seconds = time.perf_counter() - began
    return {"n_prompts": n_prompts, "n_models": len(models), "seconds": seconds,
            "lengths_per_second": n_prompts * len(models) / seconds}  # fmt: skip


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median over seeds of every metric, per held-out set, model and baseline."""
    from router_core.length import METRICS

    out: dict[str, Any] = {}
    for name in runs[0]["held_out"]:
        rows = [r["held_out"][name] for r in runs]
        out[name] = {"model": {m: statistics.median(r[m] for r in rows) for m in METRICS},
                     "baseline": {m: statistics.median(r["baseline"][m] for r in rows) for m in METRICS},
                     "n_samples": statistics.median(r["n_samples"] for r in rows),
                     "beats_baseline_mae": sum(r["mae"] < r["baseline"]["mae"] for r in rows),
                     "beats_baseline_rmse_log": sum(r["rmse_log"] < r["baseline"]["rmse_log"] for r in rows)}  # fmt: skip
    out["fit_seconds"] = statistics.median(r["fit_seconds"] for r in runs)
    out["lengths_per_second"] = statistics.median(r["throughput"]["lengths_per_second"] for r in runs)
    return out


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    import torch

    return {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
            "device": "cuda" if torch.cuda.is_available() else "cpu", "torch_threads": torch.get_num_threads(),
            "load_average": os.getloadavg()}  # fmt: skip


def main() -> None:
    """Run every seed and write the results JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--folds", type=int, help="k-fold cross-validation grouped by prompt (seed: the first of --seeds)")
    parser.add_argument("--output", help="default benchmarks/results/length.json (length_cv.json with --folds)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ROUTER_HOME", str(Path(tempfile.gettempdir()) / "router-length-benchmark"))
    results = ROOT / "benchmarks" / "results"
    args.output = args.output or str(results / ("length_cv.json" if args.folds else "length.json"))
    if args.folds:
        result = run_folds(args.folds, args.seeds[0], args.epochs, args.batch_size)
        result |= {"command": f"uv run python benchmarks/length.py --folds {args.folds} --seeds {args.seeds[0]} "
                              f"--epochs {args.epochs} --batch-size {args.batch_size}",
                   "machine": machine(), "spec": SPEC, "epochs": args.epochs, "batch_size": args.batch_size,
                   "selection_fraction": SELECTION}  # fmt: skip
        Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
        for name, metrics in result["pooled"].items():
            print(f"pooled {name}:", json.dumps(metrics), flush=True)
        print("wrote", args.output, flush=True)
        return
    runs = []
    for seed in args.seeds:  # the file is rewritten after every seed, so an interrupted run keeps what it measured
        runs.append(run_seed(seed, args.epochs, args.batch_size) | {"seed": seed})
        print(f"seed {seed}:", json.dumps({k: v for k, v in runs[-1].items() if k != "held_out"}), flush=True)
        for name, metrics in runs[-1]["held_out"].items():
            print(f"  {name}:", json.dumps(metrics), flush=True)
        payload = {"command": f"uv run python benchmarks/length.py --seeds {' '.join(map(str, args.seeds))} "
                              f"--epochs {args.epochs} --batch-size {args.batch_size}",
                   "seeds_done": [r["seed"] for r in runs],
                   "machine": machine(),
                   "spec": SPEC, "epochs": args.epochs, "batch_size": args.batch_size, "held_out_fraction": HELD_OUT,
                   "selection_fraction": SELECTION, "summary": summarise(runs), "runs": runs}  # fmt: skip
        Path(args.output).write_text(json.dumps(payload, indent=1) + "\n")
        print("wrote", args.output, flush=True)


if __name__ == "__main__":
    main()
