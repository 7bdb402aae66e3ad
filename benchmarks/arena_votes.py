"""Every classic scorer trained on the 2023 Chatbot Arena votes and evaluated on a prompt-grouped validation split.

Run: `uv run python benchmarks/arena_votes.py`. Writes benchmarks/results/arena_votes.json.
Data: ../shared/data/arena/chatbot_arena_2023_votes.jsonl (21,673 votes, 20 models; no prompt text, so the split
is grouped by question_id). Each scorer is trained through `train_from_spec` (the same path as `router-cli train`)
with min_model_occurrences 20 (all 20 models kept), validation_split 0.2, the default selection_split 0.15 (the
best Elo epoch and every calibration link are chosen on those battles, carved from the training 80%), seed 0, so
every scorer sees the same split; then `evaluate` runs on the validation battles with the calibration saved at
training time.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from router_core.evaluation import LogisticLink, evaluate
from router_core.pipeline import load_scorer, train_from_spec
from router_core.scorer import TrainHooks
from router_core.specs import parse_training_spec
from router_core.store import ModelStore

ROOT = Path(__file__).resolve().parents[1]
VOTES = ROOT.parent / "shared" / "data" / "arena" / "chatbot_arena_2023_votes.jsonl"
OUT = ROOT / "benchmarks" / "results" / "arena_votes.json"
CASES: dict[str, tuple[dict[str, Any], int]] = {
    "elo_scoring (K=16, 20 epochs)": ({"model_type": "elo_scoring", "k_factor": 16}, 20),
    "least_squares_scoring (unit)": ({"model_type": "least_squares_scoring"}, 0),
    "least_squares_scoring (count)": ({"model_type": "least_squares_scoring", "pair_weighting": "count"}, 0),
    "greedy_ranking": ({"model_type": "greedy_ranking"}, 0),
    "mcmf_scoring (log_odds)": ({"model_type": "mcmf_scoring"}, 0),
    "mcmf_scoring (win_rate_difference)": ({"model_type": "mcmf_scoring", "target": "win_rate_difference"}, 0),
    "bradley_terry_scoring (davidson)": ({"model_type": "bradley_terry_scoring", "confidence_intervals": "both"}, 0),
    "bradley_terry_scoring (rao_kupper)": ({"model_type": "bradley_terry_scoring", "tie_model": "rao_kupper"}, 0),
    "bradley_terry_scoring (ties dropped)": ({"model_type": "bradley_terry_scoring", "tie_outcomes": "drop"}, 0),
}
KEEP = ("pairwise_accuracy", "pairwise_accuracy_ci", "log_loss", "brier", "tie_log_loss", "n_pairs", "n_skipped")


def document(spec: dict[str, Any], epochs: int) -> dict[str, Any]:
    """A training spec on the votes file."""
    return {
        "model": {"name": "votes", "spec": spec | {"min_model_occurrences": 20}},
        "data": {"path": str(VOTES), "validation_split": 0.2, "seed": 0},
        "epochs": epochs,
        "batch_size": 128,
    }


def main() -> None:
    """Train, evaluate, print and write every case."""
    home = Path(tempfile.mkdtemp(prefix="router-votes-"))
    store = ModelStore(home)
    results: dict[str, Any] = {}
    try:
        for name, (spec, epochs) in CASES.items():
            training = parse_training_spec(document(spec, epochs))
            start = time.perf_counter()
            outcome = train_from_spec(training, store, TrainHooks(progress=False, log=lambda _: None))
            seconds = time.perf_counter() - start
            validation = outcome.split.validation
            metrics = evaluate(load_scorer(outcome.saved), validation, LogisticLink.load(outcome.saved.path))
            results[name] = {k: metrics.get(k) for k in KEEP} | {
                "train_accuracy": outcome.metrics["train_accuracy"], "train_seconds": seconds,
            }  # fmt: skip
            r = results[name]
            print(f"{name:<40} val acc {r['pairwise_accuracy']:.4f}  log-loss {r['log_loss']:.4f}  "
                  f"brier {r['brier']:.4f}  train acc {r['train_accuracy']:.4f}  ({seconds:.2f} s)", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(home, ignore_errors=True)
    about = {"data": str(VOTES.relative_to(ROOT.parent)), "validation_split": 0.2, "seed": 0,
             "selection_split": 0.15, "min_model_occurrences": 20, "split": "grouped by question_id"}  # fmt: skip
    OUT.write_text(json.dumps({"_about": about, "results": results}, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
