"""5-fold prompt-grouped cross-validation of the neural scorers against prompt-agnostic baselines on real battles.

Run: `uv run python benchmarks/neural_cv.py [--datasets mt_bench kaggle] [--models ...]`.
Writes benchmarks/results/neural_cv.json. For each fold, the other four folds are split again by prompt (80/20)
into training and early-stopping battles; the held-out fold is only scored. Accuracy is over decisive test battles
whose two models were seen in training; log-loss uses P(A beats B) = sigmoid(c * (s_A - s_B)) with c fitted on
the decisive early-stopping battles (a 1-D logistic regression on battles the weights were not fitted to), so
margin-trained and overfitted scores are compared fairly.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar

from router_core.data.loading import load_file
from router_core.data.prepare import group_key, grouped_split
from router_core.data.types import A_WINS, Battle, Battles
from router_core.metrics import pairwise_accuracy
from router_core.registry import scorer_class
from router_core.scoring import battle_scores
from router_core.specs import MODEL_SPECS
from router_core.testing import quiet_fit_args

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DATASETS = {
    "mt_bench": DATA / "mt_bench_human" / "battles_turn1_with_text.jsonl",
    "kaggle": DATA / "kaggle_arena_55k_samples" / "train_sample_khaaliswooden.csv",
}
ADAMW = {"optimizer_type": "adamw", "learning_rate": 0.003, "weight_decay": 0.05}
EMBEDDING = {"embedding_type": "attention", "h_emb": 64, "h_scalar": 16, "h_pair": 64, "d_out": 32,
             "num_attention_heads": 4, "pairs_per_model": 16, "models_per_batch": 16, "embeddings_per_model": 4,
             "optimizer": {"optimizer_type": "adamw", "learning_rate": 0.001}}  # fmt: skip
MODELS: dict[str, tuple[dict[str, Any], int]] = {
    # name: (spec, epochs)
    "bt_sgd": ({"model_type": "simple_scoring", "ranking_loss_type": "bradley_terry", "non_ranking_loss_coeff": 0.0,
                "balance_model_samples": False, "min_model_occurrences": 1,
                "optimizer": {"optimizer_type": "adamw", "learning_rate": 0.02, "weight_decay": 0.0}}, 60),
    "bradley_terry_scoring": ({"model_type": "bradley_terry_scoring", "min_model_occurrences": 1}, 1),
    "simple_scoring": ({"model_type": "simple_scoring", "min_model_occurrences": 1,
                        "optimizer": {"optimizer_type": "adamw", "learning_rate": 0.01}}, 40),
    "dense_network": ({"model_type": "dense_network", "hidden_dims": [64], "model_id_embedding_dim": 8,
                       "dropout": 0.3, "ranking_loss_type": "bradley_terry", "balance_model_samples": False,
                       "min_model_comparisons": 1, "optimizer": ADAMW}, 30),
    "dn_embedding": ({"model_type": "dn_embedding", "hidden_dims": [64, 32], "input_proj_dim": 32, "dropout": 0.3,
                      "use_skip_connections": True, "ranking_loss_type": "bradley_terry",
                      "balance_model_samples": False, "min_model_comparisons": 1, "embedding_model_epochs": 10,
                      "embedding_spec": EMBEDDING, "optimizer": ADAMW | {"learning_rate": 0.001}}, 30),
}  # fmt: skip


def folds(battles: list[Battle], k: int, seed: int) -> np.ndarray:
    """Fold number of every battle; all battles of one prompt share a fold (groups dealt in a seeded order)."""
    keys = np.array([group_key(b) for b in battles], dtype=object)
    unique, inverse = np.unique(keys, return_inverse=True)
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of_group = np.empty(len(unique), dtype=np.int64)
    fold_of_group[order] = np.arange(len(unique)) % k
    return fold_of_group[inverse]


def fit_link(diff: np.ndarray, a_won: np.ndarray) -> float:
    """Scale c >= 0 minimising the log-loss of sigmoid(c * diff)."""
    def loss(c: float) -> float:
        return float(np.mean(np.logaddexp(0.0, -np.where(a_won, 1.0, -1.0) * c * diff)))

    return float(minimize_scalar(loss, bounds=(0.0, 100.0 / max(np.abs(diff).max(), 1e-9)), method="bounded").x)


def metrics(scorer: Any, calibration: Battles, test: Battles) -> dict[str, float]:
    """Accuracy and log-loss on decisive test battles of known models (link fitted on `calibration`)."""
    sa, sb = battle_scores(scorer, calibration)
    keep = calibration.decisive & np.isfinite(sa) & np.isfinite(sb)
    c = fit_link((sa - sb)[keep], calibration.winner[keep] == A_WINS)
    ta, tb = battle_scores(scorer, test)
    accuracy, n = pairwise_accuracy(ta, tb, test.winner)
    keep = test.decisive & np.isfinite(ta) & np.isfinite(tb)
    signs = np.where(test.winner[keep] == A_WINS, 1.0, -1.0)
    log_loss = float(np.mean(np.logaddexp(0.0, -signs * c * (ta - tb)[keep])))
    return {"accuracy": accuracy, "log_loss": log_loss, "n": n, "link": c}


def run_model(name: str, records: list[Battle], fold_ids: np.ndarray, seed: int) -> list[dict[str, float]]:
    """Per-fold metrics of one model."""
    spec_doc, epochs = MODELS[name]
    spec = MODEL_SPECS[spec_doc["model_type"]].model_validate(spec_doc)
    results = []
    for fold in range(fold_ids.max() + 1):
        rest = [r for r, f in zip(records, fold_ids, strict=True) if f != fold]
        test = Battles.from_records(r for r, f in zip(records, fold_ids, strict=True) if f == fold)
        inner_train, inner_val = grouped_split(rest, 0.2, seed)
        train = Battles.from_records(rest[i] for i in inner_train)
        val = Battles.from_records(rest[i] for i in inner_val)
        options = quiet_fit_args(epochs=epochs, batch_size=64, seed=seed)
        began = time.perf_counter()
        scorer = scorer_class(spec.model_type)(spec).fit(train, val, *options)
        result = metrics(scorer, val, test) | {"fit_seconds": time.perf_counter() - began}
        results.append(result)
        print(f"  {name} fold {fold}: acc {result['accuracy']:.4f} log-loss {result['log_loss']:.4f} "
              f"(n={result['n']}, {result['fit_seconds']:.1f}s)", flush=True)
    return results


def summarise(per_fold: dict[str, list[dict[str, float]]], baseline: str) -> dict[str, Any]:
    """Mean and standard error over folds, and the paired difference to the baseline."""
    out: dict[str, Any] = {}
    for name, rows in per_fold.items():
        summary: dict[str, Any] = {}
        for key in ("accuracy", "log_loss"):
            values = np.array([r[key] for r in rows])
            summary[key] = {"mean": float(values.mean()), "se": float(values.std(ddof=1) / np.sqrt(len(values)))}
            if baseline in per_fold and name != baseline:
                diff = values - np.array([r[key] for r in per_fold[baseline]])
                summary[f"{key}_minus_{baseline}"] = {"mean": float(diff.mean()),
                                                      "se": float(diff.std(ddof=1) / np.sqrt(len(diff)))}  # fmt: skip
        summary["n_test"] = int(sum(r["n"] for r in rows))
        summary["fit_seconds"] = float(sum(r["fit_seconds"] for r in rows))
        out[name] = summary
    return out


def main() -> None:
    """Run the cross-validation and write the JSON result."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--baseline", default="bt_sgd")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "neural_cv.json"))
    args = parser.parse_args()
    report: dict[str, Any] = {"folds": args.folds, "seed": args.seed, "baseline": args.baseline,
                              "models": {m: MODELS[m][0] | {"epochs": MODELS[m][1]} for m in args.models},
                              "datasets": {}}  # fmt: skip
    for dataset in args.datasets:
        records = load_file(DATASETS[dataset])
        fold_ids = folds(records, args.folds, args.seed)
        print(f"{dataset}: {len(records)} battles, {len({r.model_a for r in records} | {r.model_b for r in records})} "
              f"models, {len({group_key(r) for r in records})} prompts", flush=True)  # fmt: skip
        per_fold: dict[str, list[dict[str, float]]] = {}
        for name in args.models:
            try:
                per_fold[name] = run_model(name, records, fold_ids, args.seed)
            except ImportError as error:  # e.g. router-classic not installed
                print(f"  skipping {name}: {error}")
        report["datasets"][dataset] = {"n_battles": len(records), "summary": summarise(per_fold, args.baseline),
                                       "per_fold": per_fold}  # fmt: skip
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
