"""`router-cli evaluate`: accuracy, log-loss, Brier (and more) of saved models on battle data, side by side.

One model: the JSON output's top level holds its metrics (`pairwise_accuracy`, `log_loss`, `n_pairs`, ...).
Several: `{"models": {"TYPE/NAME": metrics, ...}}`. Definitions: docs/evaluation.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, get_args

from router_cli._output import bounded_int, write_json_output
from router_core.errors import UserError

MAX_BOOTSTRAP_ROUNDS = 10_000
"""More rounds than this add nothing to a 95% interval and only cost time and memory."""
ROWS = ("pairwise_accuracy", "pairwise_accuracy_ci", "log_loss", "brier", "tie_log_loss", "n_pairs", "n_skipped",
        "coverage", "all_pairs.pairwise_accuracy", "all_pairs.log_loss", "all_pairs.n_pairs")
SENSITIVITY_ROWS = ("prompt_sensitivity.shuffled_pairwise_accuracy", "prompt_sensitivity.accuracy_drop",
                    "prompt_sensitivity.shuffled_log_loss", "prompt_sensitivity.log_loss_rise")
"""Dotted names read nested metrics (`all_pairs`: every decisive pair with the unknown-model fallback)."""


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    parser = sub.add_parser("evaluate", help="evaluate saved models on battle data (accuracy, log-loss, Brier)")
    parser.add_argument("--model", nargs="+", required=True, metavar="TYPE/NAME", help="saved models to evaluate")
    parser.add_argument("--data", nargs="+", required=True, metavar="PATH_OR_DATASET",
                        help="battle files (parquet, JSONL, CSV) and/or dataset names (e.g. arena_sample)")  # fmt: skip
    parser.add_argument("--format", help="schema of the data files (default: detected from the columns)")
    parser.add_argument("--output-path", help="also write the metrics as JSON to this file")
    parser.add_argument("--bootstrap-rounds", type=bounded_int(0, MAX_BOOTSTRAP_ROUNDS), default=1000,
                        help=f"rounds of the accuracy interval (0 to {MAX_BOOTSTRAP_ROUNDS}, default 1000)")  # fmt: skip
    parser.add_argument("--seed", type=bounded_int(0, 2**31 - 1), default=0, help="seed of the bootstrap")
    parser.add_argument("--batch-size", type=bounded_int(1, 1_048_576), default=128,
                        help="prompts per scoring batch (default 128)")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bar over the bootstrap rounds")
    parser.add_argument("--prompt-sensitivity", action="store_true",
                        help="also score the battles with their prompts shuffled among themselves and report how much "
                             "accuracy and log-loss change (0 for prompt-agnostic models)")  # fmt: skip
    parser.set_defaults(run=run)


def load_records(sources: list[str], fmt: str | None) -> list[Any]:
    """Battles from every source in order: an existing file, else a dataset name."""
    from router_core.data.loading import load_dataset, load_file
    from router_core.specs.training import DataFormat, DatasetName

    names = get_args(DatasetName)
    if fmt is not None and fmt not in get_args(DataFormat):
        raise UserError(f"unknown --format {fmt!r}; known: {', '.join(get_args(DataFormat))}")
    records: list[Any] = []
    for source in sources:
        if Path(source).is_file():
            records += load_file(Path(source), fmt)
        elif source in names:
            records += load_dataset(source)
        else:
            raise UserError(f"--data {source!r} is neither a file nor a dataset name ({', '.join(names)})")
    return records


def run(args: argparse.Namespace) -> int:
    """Load the data once, evaluate every model, print a table and optionally write JSON."""
    from router_core.data.types import Battles
    from router_core.evaluation import LogisticLink, evaluate
    from router_core.pipeline import load_scorer
    from router_core.store import ModelStore

    store = ModelStore()
    saved = [store.resolve(ref) for ref in args.model]  # fail on a bad name before loading data
    battles = Battles.from_records(load_records(args.data, args.format))
    if len(battles) == 0:
        raise UserError("the data holds no battles")
    results = {}
    for model in saved:
        results[model.ref] = evaluate(load_scorer(model), battles, LogisticLink.load(model.path),
                                      args.bootstrap_rounds, seed=args.seed, batch_size=args.batch_size,
                                      progress=not args.no_progress,
                                      prompt_sensitivity=args.prompt_sensitivity)  # fmt: skip
    print(format_table(results, ROWS + (SENSITIVITY_ROWS if args.prompt_sensitivity else ())))
    if any("per_category" in r for r in results.values()):
        print("\naccuracy (decisive pairs) per category")
        print(format_categories(results))
    if args.output_path:
        payload = next(iter(results.values())) | {"model": saved[0].ref} if len(results) == 1 else {"models": results}
        write_json_output(Path(args.output_path), payload | {"data": list(args.data)})
        print(f"wrote {args.output_path}")
    return 0


def format_table(results: dict[str, dict[str, Any]], names: tuple[str, ...] = ROWS) -> str:
    """Metrics as rows, models as columns."""
    header = ["metric", *results]
    rows = [header] + [[name, *(_cell(_get(r, name)) for r in results.values())] for name in names]
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def format_categories(results: dict[str, dict[str, Any]]) -> str:
    """Per-category accuracy and pair count: categories as rows, models as columns."""
    names = sorted({c for r in results.values() for c in r.get("per_category", {})})
    rows = [["category", *results]]
    for name in names:
        cells = [(r.get("per_category", {}).get(name) or {}) for r in results.values()]
        rows.append([name, *(f"{_cell(c.get('pairwise_accuracy'))} ({c.get('n_pairs', 0)})" for c in cells)])
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _get(result: dict[str, Any], dotted: str) -> Any:
    value: Any = result
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    return f"{value:.4f}" if isinstance(value, float) else str(value)
