"""gradient_boosting: fit time and scoring throughput, in process and exported (XGBoost without torch).

Run: `uv run python benchmarks/gradient_boosting.py [--battles 20000] [--rounds 50] [--repeats 2]`.
Writes benchmarks/results/gradient_boosting.json. Battles: `--battles` synthetic votes among 20 models over the
distinct bundled arena prompts, with a planted per-model preference for long or short prompts (as in
benchmarks/runtime.py). Two models: inputs [prompt_features, model_id] and [prompt_features, prompt_embedding,
model_id] (all-MiniLM-L6-v2). Measured:
- fit: wall seconds of `scorer.fit` for `--rounds` rounds (prompt embeddings cached beforehand, so this is the
  boosting itself: building the rows, the custom objective, the trees, the per-round metrics);
- scoring new prompts (the unseen Kaggle-sample prompts) against the 20 models: in process (the fitted scorer,
  torch encoder) and exported (`router_runtime.load_exported`: XGBoost's predictor, ONNX fp32 encoder), with the
  embedding included; and the trees alone on prepared rows (scores/s).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KAGGLE = ROOT.parent / "shared" / "data" / "kaggle_arena_55k_samples" / "train_sample_khaaliswooden.csv"
N_MODELS = 20
INPUTS = {"features": ["prompt_features", "model_id"],
          "features+embedding": ["prompt_features", "prompt_embedding", "model_id"]}  # fmt: skip
N_SCORE = {"features": 1000, "features+embedding": 300}
THREADS = (None, 1)
"""XGBoost threads of each case: its default (all cores) and 1."""
"""New prompts scored per case (the encoder makes the embedding case about 30x slower per prompt on CPU)."""


def kaggle_prompts() -> list[str]:
    """First turn of each Kaggle-sample row, distinct, in file order (prompts no model was trained on)."""
    with KAGGLE.open(newline="", encoding="utf-8") as handle:
        turns = [json.loads(row["prompt"])[0] for row in csv.DictReader(handle)]
    return [p for p in dict.fromkeys(turns) if isinstance(p, str) and p.strip()]


def battles(n: int):
    from router_core.data.loading import load_embedded_sample
    from router_core.data.types import Battle, Battles

    rng = np.random.default_rng(0)
    prompts = list(dict.fromkeys(b.prompt for b in load_embedded_sample() if b.prompt))
    models = [f"model-{i}" for i in range(N_MODELS)]
    skill = rng.normal(size=N_MODELS)
    records = []
    for i in range(n):
        a, b = rng.choice(N_MODELS, size=2, replace=False)
        prompt = prompts[int(rng.integers(len(prompts)))]
        edge = skill[a] - skill[b] + (0.5 if (len(prompt) > 200) == (a % 2 == 0) else -0.5)
        winner = "model_a" if rng.random() < 1 / (1 + np.exp(-edge)) else "model_b"
        records.append(Battle(models[a], models[b], winner, id=str(i), prompt=prompt))
    cut = int(0.9 * n)
    return Battles.from_records(records[:cut]), Battles.from_records(records[cut:]), models


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--battles", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "gradient_boosting.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import xgboost as xgb

    from router_classic.gradient_boosting import GradientBoostingScorer
    from router_core.specs import GradientBoostingSpec
    from router_core.store import ModelStore
    from router_core.testing import quiet_fit_args
    from router_runtime import load_exported
    from router_runtime.export import export_model

    train, selection, models = battles(args.battles)
    new_prompts = kaggle_prompts()
    results: dict[str, object] = {
        "command": "uv run python benchmarks/gradient_boosting.py " + " ".join(
            f"--{k} {v}" for k, v in (("battles", args.battles), ("rounds", args.rounds), ("repeats", args.repeats))),
        "machine": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version(),
                    "xgboost": xgb.__version__, "load_average": os.getloadavg()[0]},
        "train_battles": len(train), "selection_battles": len(selection), "models": N_MODELS, "cases": {},
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="gb-bench-") as scratch:
        for (name, blocks), threads in ((item, t) for item in INPUTS.items() for t in THREADS):
            case = f"{name}, threads {threads or 'default'}"
            spec = GradientBoostingSpec(input_features=blocks, min_model_occurrences=1, threads=threads)
            scorer = GradientBoostingScorer(spec)
            if "prompt_embedding" in blocks:  # embed once (writes the cache), so that fit times the boosting only
                scorer.encoder().encode(list(dict.fromkeys(p or "" for p in train.prompts + selection.prompts)))

            def fit(scorer: GradientBoostingScorer = scorer) -> None:
                scorer.fit(train, selection, *quiet_fit_args(epochs=args.rounds, seed=0))

            fit_s = median_time(fit, args.repeats)
            store = ModelStore(Path(scratch) / "store")
            store.save("gradient_boosting", "bench", scorer.save,
                       {"model": {"spec": spec.model_dump(mode="json")}}, {})
            saved = store.resolve("gradient_boosting/bench")
            out = Path(scratch) / f"export-{len(blocks)}-{threads}"
            export_model(saved, out)
            manifest = json.loads((out / "manifest.json").read_text())
            exported = load_exported(out, threads=threads)
            prompts = new_prompts[: N_SCORE[name]]
            in_process = median_time(lambda s=scorer, p=prompts: s.score(p, models), args.repeats)
            served = median_time(lambda e=exported, p=prompts: e.score(p, models), args.repeats)
            rows = exported.prompt_inputs(prompts)
            trees = median_time(lambda e=exported, r=rows: e._trees(r, np.arange(N_MODELS)), args.repeats)  # noqa: SLF001
            n_scores = len(prompts) * N_MODELS
            results["cases"][case] = {  # type: ignore[index]
                "input_features": blocks, "threads": threads, "rounds": args.rounds, "best_round": scorer.best_round_,
                "fit_seconds": fit_s, "fit_seconds_per_round": fit_s / args.rounds,
                "train_rows_per_second": 2 * len(train) * args.rounds / fit_s,
                "importance_sides": scorer.importance_["sides"],
                "scored_prompts": len(prompts),
                "in_process_scores_per_second": n_scores / in_process,
                "exported_scores_per_second": n_scores / served,
                "trees_only_scores_per_second": n_scores / trees,
                "parity": manifest["parity"],
                "export_files_bytes": {f: (out / f).stat().st_size for f in manifest["files"]},
            }  # fmt: skip
            print(case, json.dumps(results["cases"][case], indent=1), flush=True)  # type: ignore[index]
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
