"""XGBoost vs LightGBM on gradient_boosting's task: the same rows, the same pairwise objective, the same rounds.

Run: `uv run --with lightgbm python benchmarks/gb_libraries.py [--battles 20000] [--rounds 50] [--threads 1 2]`
(LightGBM is not a dependency of the project; `--with` adds it for this run only). Writes
benchmarks/results/gb_libraries.json. Rows: the 44 scaled prompt features + the model index (categorical in both
libraries) of the battles of benchmarks/gradient_boosting.py, two rows per battle; objective: the margin hinge of
`router_classic.kernels.pairwise_objective` with balanced weights; trees of depth 6 (XGBoost `max_depth` 6,
LightGBM `max_depth` 6 with `num_leaves` 64), learning rate 0.1, 256 bins. Measured: wall seconds of the boosting
(the rows are built once beforehand), the decisive pairwise accuracy on the training battles, and the installed
size of each library's package directory.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def installed_mb(distribution: str) -> float:
    files = importlib.metadata.distribution(distribution).files or []
    return sum(f.locate().stat().st_size for f in files if Path(f.locate()).is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--battles", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "gb_libraries.json")
    args = parser.parse_args()
    import lightgbm as lgb
    import xgboost as xgb
    from gradient_boosting import battles

    from router_classic.kernels.pairwise_objective import MARGIN_RANKING, pairwise_objective
    from router_core.features import PromptFeatureScaler, prompt_feature_matrix
    from router_core.metrics import pairwise_accuracy
    from router_core.sampling import balanced_weights

    train, _, _ = battles(args.battles)
    prompts = list(dict.fromkeys(p or "" for p in train.prompts))
    raw = prompt_feature_matrix(prompts)
    table = PromptFeatureScaler().fit(raw).transform(raw).astype(np.float32)
    row_of = {p: i for i, p in enumerate(prompts)}
    rows = np.array([row_of[p or ""] for p in train.prompts])
    a, b, winner = train.model_a.astype(np.int64), train.model_b.astype(np.int64), train.winner.astype(np.int64)
    data = np.concatenate([table[np.r_[rows, rows]], np.r_[a, b][:, None].astype(np.float32)], axis=1)
    weight = balanced_weights(a, b, len(train.models))
    n = len(winner)

    def gradients(predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _, ga, gb, ha, hb = pairwise_objective(predictions[:n].astype(np.float64), predictions[n:].astype(np.float64),
                                               winner, weight, MARGIN_RANKING, 0.1, 0.0, 0.01)  # fmt: skip
        return np.concatenate([ga, gb]), np.concatenate([ha, hb])

    def accuracy(predictions: np.ndarray) -> float:
        return pairwise_accuracy(predictions[:n], predictions[n:], winner)[0]

    def fit_xgboost(threads: int) -> float:
        matrix = xgb.DMatrix(data, feature_types=["q"] * (data.shape[1] - 1) + ["c"], enable_categorical=True)
        params = {"max_depth": 6, "eta": 0.1, "tree_method": "hist", "max_bin": 256, "nthread": threads,
                  "base_score": 0.0, "disable_default_eval_metric": 1}  # fmt: skip
        booster = xgb.train(params, matrix, args.rounds, obj=lambda p, _: gradients(p))
        return accuracy(booster.predict(matrix, output_margin=True))

    def fit_lightgbm(threads: int) -> float:
        dataset = lgb.Dataset(data, categorical_feature=[data.shape[1] - 1], free_raw_data=False)
        params = {"objective": lambda p, _: gradients(p), "max_depth": 6, "num_leaves": 64, "learning_rate": 0.1,
                  "max_bin": 256, "num_threads": threads, "verbose": -1, "min_data_in_leaf": 1,
                  "min_sum_hessian_in_leaf": 1.0, "lambda_l2": 1.0, "boost_from_average": False}  # fmt: skip
        booster = lgb.train(params, dataset, num_boost_round=args.rounds)
        return accuracy(booster.predict(data, raw_score=True))

    results: dict[str, object] = {
        "command": "uv run --with lightgbm python benchmarks/gb_libraries.py " + " ".join(sys.argv[1:]),
        "rows": len(data), "columns": data.shape[1], "rounds": args.rounds, "load_average": os.getloadavg()[0],
        "versions": {"xgboost": xgb.__version__, "lightgbm": lgb.__version__},
        "installed_mb": {"xgboost": installed_mb("xgboost"), "lightgbm": installed_mb("lightgbm")}, "fits": {},
    }  # fmt: skip
    for library, fit in (("xgboost", fit_xgboost), ("lightgbm", fit_lightgbm)):
        for threads in args.threads:
            times, train_accuracy = [], 0.0
            for _ in range(args.repeats):
                start = time.perf_counter()
                train_accuracy = fit(threads)
                times.append(time.perf_counter() - start)
            results["fits"][f"{library}, {threads} threads"] = {  # type: ignore[index]
                "seconds": statistics.median(times), "train_accuracy": train_accuracy}
            print(library, threads, results["fits"][f"{library}, {threads} threads"], flush=True)  # type: ignore[index]
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
