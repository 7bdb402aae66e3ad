"""5-fold prompt-grouped cross-validation of the prompt-aware scorers' shipped defaults against Bradley-Terry.

Run: `uv run python benchmarks/neural_cv.py [--datasets mt_bench kaggle arena_sample] [--models ...]`; tables of a
result: `uv run python benchmarks/neural_cv.py --table benchmarks/results/neural_cv.json`.
Writes benchmarks/results/neural_cv.json. Every model is its `training_specs/<type>/default.json` spec, with the
rare-model threshold lowered to 20 for these small data sets (said in the JSON), trained the way `router-cli
train` trains it: the four other folds are split by the pipeline (`prepare_split`, validation_split 0, the
default selection_split, one data seed for every model) into fitting and selection battles, `fit_on_split` fits
the base model and the scorer, and the calibration link comes from `calibration_link` (fitted on the selection
battles; 1 for a scorer over a base). The held-out fold's battles with prompt text (the same pairs for every model)
are only scored, with `router_core.evaluation.evaluate` (accuracy on pairs of known models, log-loss, every pair
with the unknown-model fallback, coverage, and the prompt-sensitivity figure). `--repeats R` repeats it all with R
fold assignments (fold seeds seed .. seed+R-1) and pools the R x K folds in the summary: on a small data set one
battle is a large share of a fold, and repeating narrows the mean without choosing anything.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from router_core.data.loading import load_dataset, load_file
from router_core.data.prepare import group_key, grouped_folds
from router_core.data.types import Battle, Battles
from router_core.evaluation import evaluate
from router_core.pipeline import calibration_link, fit_on_split, prepare_split, scorer_split
from router_core.registry import scorer_class
from router_core.specs import parse_training_spec
from router_core.testing import quiet_fit_args

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DATASETS = {
    "mt_bench": DATA / "mt_bench_human" / "battles_turn1_with_text.jsonl",
    "kaggle": DATA / "kaggle_arena_55k_samples" / "train_sample_khaaliswooden.csv",
    "arena_sample": "arena_sample",  # bundled with router-core
}
MODELS = ("bradley_terry_scoring", "dense_network", "dn_embedding", "gradient_boosting")
"""The default --models; transformer_embedding is a choice too (slow on CPU: pass --epochs and --override)."""
CHOICES = (*MODELS, "transformer_embedding")
EPOCHS: dict[str, int] = {}
"""--epochs: "all" or a model type -> epochs replacing the default spec's (recorded in the JSON)."""
MIN_OCCURRENCES = 20
"""The shipped defaults' thresholds (up to 1000) would drop nearly every model of a 2k-battle file."""
DATA_SEED = 42
"""One data seed for every model (most defaults' own): the selection battles carved from the training folds are
then the same battles for every model, so a scorer over a Bradley-Terry base at alpha 0 is exactly the baseline."""
OVERRIDES: dict[str, dict[str, Any]] = {}
"""Further per-model changes to the shipped default (filled by --override; recorded in the JSON)."""


def load(dataset: str) -> list[Battle]:
    """The battles of a data set (a file beside the checkout, or a bundled dataset name)."""
    source = DATASETS[dataset]
    return load_dataset(str(source)) if isinstance(source, str) else load_file(source)


def default_spec(model_type: str) -> dict[str, Any]:
    """The shipped default training spec of a model type, as it would be trained here."""
    doc = json.loads((ROOT / "training_specs" / model_type / "default.json").read_text())
    doc.pop("$schema", None)
    doc["model"]["spec"]["min_model_occurrences"] = MIN_OCCURRENCES
    doc["model"]["spec"].pop("min_model_comparisons", None)
    doc["model"]["spec"] |= OVERRIDES.get(model_type, {})
    if model_type in EPOCHS or "all" in EPOCHS:
        doc["epochs"] = EPOCHS.get(model_type, EPOCHS.get("all"))
    doc["data"] = {
        "path": "unused",
        "validation_split": 0.0,
        "seed": DATA_SEED,
        "selection_split": doc["data"].get("selection_split", 0.15),
    }
    return doc


def run_model(model_type: str, records: list[Battle], fold_ids: np.ndarray) -> list[dict[str, Any]]:
    """Per-fold metrics of one model type's default spec."""
    training = parse_training_spec(default_spec(model_type))
    results = []
    for fold in range(int(fold_ids.max()) + 1):
        rest = [r for r, f in zip(records, fold_ids, strict=True) if f != fold]
        test = Battles.from_records(r for r, f in zip(records, fold_ids, strict=True) if f == fold)
        model_spec = training.model.spec
        assert model_spec is not None
        split = prepare_split(rest, training, model_spec)
        run, hooks = quiet_fit_args(epochs=training.epochs, batch_size=training.batch_size, seed=training.data.seed)
        began = time.perf_counter()
        scorer = fit_on_split(scorer_class(model_type)(model_spec), model_spec, split, run, hooks)
        seconds = time.perf_counter() - began
        link = calibration_link(scorer, scorer_split(model_spec, split), seed=training.data.seed)
        test = Battles.from_records(r for r in test.records if r.prompt and r.prompt.strip())  # the same pairs for all
        got = evaluate(scorer, test, link, bootstrap_rounds=0, progress=False, prompt_sensitivity=True)
        result = {
            "accuracy": got["pairwise_accuracy"],
            "log_loss": got["log_loss"],
            "n": got["n_pairs"],
            "all_pairs_accuracy": got["all_pairs"]["pairwise_accuracy"],
            "all_pairs_log_loss": got["all_pairs"]["log_loss"],
            "coverage": got["coverage"],
            "prompt_sensitivity_accuracy": got["prompt_sensitivity"]["accuracy_drop"],
            "prompt_sensitivity_log_loss": got["prompt_sensitivity"]["log_loss_rise"],
            "fit_seconds": seconds,
            "n_train": len(split.train),
            "n_selection": len(split.selection),
        }
        result |= {k: v for k, v in scorer.report().items() if k in ("alpha", "best_epoch")}
        results.append(result)
        print(
            f"  {model_type} fold {fold}: acc {result['accuracy']:.4f} log-loss {result['log_loss']:.4f} "
            f"alpha {result.get('alpha', '-')} (n={result['n']}, {seconds:.1f}s)",
            flush=True,
        )
    return results


def summarise(per_fold: dict[str, list[dict[str, float]]], baseline: str) -> dict[str, Any]:
    """Mean and standard error over folds, and the paired difference to the baseline."""
    out: dict[str, Any] = {}
    for name, rows in per_fold.items():
        summary: dict[str, Any] = {}
        for key in ("accuracy", "log_loss", "all_pairs_accuracy", "prompt_sensitivity_accuracy"):
            values = np.array([r[key] for r in rows])
            summary[key] = {"mean": float(values.mean()), "se": float(values.std(ddof=1) / np.sqrt(len(values)))}
            if baseline in per_fold and name != baseline:
                diff = values - np.array([r[key] for r in per_fold[baseline]])
                summary[f"{key}_minus_{baseline}"] = {"mean": float(diff.mean()),
                                                      "se": float(diff.std(ddof=1) / np.sqrt(len(diff)))}  # fmt: skip
        summary["n_test"] = int(sum(r["n"] for r in rows))
        if "alpha" in rows[0]:
            summary["alpha_per_fold"] = [r["alpha"] for r in rows]
        summary["fit_seconds"] = float(sum(r["fit_seconds"] for r in rows))
        out[name] = summary
    return out


def table(report: dict[str, Any]) -> str:
    """Markdown tables (one per data set) of a result JSON: mean +- standard error over folds, paired differences."""
    lines = []
    baseline = report["baseline"]
    for dataset, result in report["datasets"].items():
        repeats = f", {report['repeats']} fold assignments" if report.get("repeats", 1) > 1 else ""
        lines += [f"\n{dataset} ({result['n_battles']} battles{repeats})\n",
                  f"| model | accuracy | minus {baseline} | log-loss | minus {baseline} | all pairs accuracy | "
                  "prompt sensitivity (accuracy) | alpha per fold |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, summary in result["summary"].items():

            def cell(key: str, digits: int = 4) -> str:
                value = summary.get(key)
                return "" if value is None else f"{value['mean']:+.{digits}f} +- {value['se']:.{digits}f}"

            per_fold = summary.get("alpha_per_fold", [])
            alphas = ", ".join(f"{a:.2f}" for a in per_fold) or "-"
            if len(per_fold) > 5:
                alphas = f"above 0 in {sum(a > 0 for a in per_fold)} of {len(per_fold)}"
            lines.append(
                f"| {name} | {cell('accuracy').lstrip('+')} | {cell(f'accuracy_minus_{baseline}')} | "
                f"{cell('log_loss').lstrip('+')} | {cell(f'log_loss_minus_{baseline}')} | "
                f"{cell('all_pairs_accuracy').lstrip('+')} | {cell('prompt_sensitivity_accuracy')} | {alphas} |"
            )
    return "\n".join(lines)


def main() -> None:
    """Run the cross-validation and write the JSON result."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(CHOICES))
    parser.add_argument(
        "--epochs",
        action="append",
        default=[],
        metavar="[TYPE:]N",
        help="train every model (N) or one model type (TYPE:N) this many epochs instead of its default's",
    )
    parser.add_argument("--baseline", default="bradley_terry_scoring")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="repeat the cross-validation with fold seeds seed, seed+1, ...; summaries pool every fold",
    )
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="TYPE:JSON",
        help='change a default spec, e.g. dn_embedding:{"embedding_model_epochs": 50} (recorded)',
    )
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "neural_cv.json"))
    parser.add_argument("--table", nargs="+", metavar="JSON", help="only print the markdown tables of result files")
    args = parser.parse_args()
    if args.table:
        for path in args.table:
            print(table(json.loads(Path(path).read_text())))
        return
    for item in args.override:
        model_type, _, doc = item.partition(":")
        OVERRIDES[model_type] = OVERRIDES.get(model_type, {}) | json.loads(doc)
    for item in args.epochs:
        model_type, _, count = item.rpartition(":")
        if model_type and model_type not in CHOICES:
            parser.error(f"--epochs {item}: {model_type!r} is not one of {', '.join(CHOICES)}")
        if not count.isdigit() or int(count) < 1:
            parser.error(f"--epochs {item}: expected a positive whole number of epochs")
        EPOCHS[model_type or "all"] = int(count)
    report: dict[str, Any] = {"folds": args.folds, "seed": args.seed, "repeats": args.repeats, "data_seed": DATA_SEED,
                              "baseline": args.baseline, "epochs": EPOCHS or None,
                              "min_model_occurrences": MIN_OCCURRENCES, "overrides": OVERRIDES,
                              "specs": {m: default_spec(m) for m in args.models}, "datasets": {}}  # fmt: skip
    for dataset in args.datasets:
        records = load(dataset)
        print(f"{dataset}: {len(records)} battles, {len({r.model_a for r in records} | {r.model_b for r in records})} "
              f"models, {len({group_key(r) for r in records})} prompts", flush=True)  # fmt: skip
        per_fold: dict[str, list[dict[str, Any]]] = {}
        for name in args.models:
            per_fold[name] = []
            for repeat in range(args.repeats):
                rows = run_model(name, records, grouped_folds(records, args.folds, args.seed + repeat))
                per_fold[name] += [row | {"fold_seed": args.seed + repeat} for row in rows]
        report["datasets"][dataset] = {"n_battles": len(records), "summary": summarise(per_fold, args.baseline),
                                       "per_fold": per_fold}  # fmt: skip
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
