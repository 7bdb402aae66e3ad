"""`router-cli list`: the saved models with type, creation time, validation accuracy and, for a model over a
prompt-agnostic base, the base and its fitted alpha."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    parser = sub.add_parser("list", help="list saved models")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print one line per saved model."""
    from router_core.store import ModelStore

    store = ModelStore()
    rows = [
        {
            "model": m.ref,
            "created": m.meta.get("created", "?"),
            "validation_accuracy": (m.meta.get("metrics") or {}).get("validation_accuracy"),
            "base_model": (m.meta.get("fit") or {}).get("base_model"),
            "alpha": (m.meta.get("fit") or {}).get("alpha"),
            "damaged": m.damaged,
        }
        for m in store.list()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no saved models in {store.models_dir}")
        return 0
    width = max(len(str(r["model"])) for r in rows)
    print(f"{'MODEL':<{width}}  {'CREATED':<25}  VAL_ACC  BASE (ALPHA)")
    for r in rows:
        acc = r["validation_accuracy"]
        if r["damaged"]:
            print(f"{r['model']:<{width}}  DAMAGED: {r['damaged']}")
        else:
            base = f"{r['base_model']} ({_accuracy(r['alpha'])})" if r["base_model"] else "-"
            print(f"{r['model']:<{width}}  {str(r['created']):<25}  {_accuracy(acc):<7}  {base}")
    return 0


def _accuracy(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "-"
