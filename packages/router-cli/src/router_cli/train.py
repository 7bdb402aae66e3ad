"""`router-cli train`: train a model from a JSON training spec (a file, or the spec on stdin)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from router_core.errors import UserError


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    parser = sub.add_parser("train", help="train a model from a JSON training spec")
    parser.add_argument("--spec-file", help="path to the training spec (default: read it from stdin)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=run)


def read_spec_document(path: str | None) -> dict[str, Any]:
    """The spec as a JSON object, from `path` or stdin."""
    if path is None:
        if sys.stdin.isatty():
            raise UserError("give --spec-file PATH or pipe the spec on stdin")
        text = sys.stdin.read()
    else:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as error:
            raise UserError(f"cannot read spec file {path}: {error.strerror}") from error
        except UnicodeDecodeError:
            raise UserError(f"spec file {path} is not UTF-8 text") from None
    where = path or "stdin"
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"the spec ({where}) is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})") from None
    except RecursionError:
        raise UserError(f"the spec ({where}) is nested too deeply to be a training spec") from None
    if not isinstance(document, dict):
        raise UserError("the training spec must be a JSON object")
    return document


def run(args: argparse.Namespace) -> int:
    """Validate the spec, train, save, report. Under torchrun only rank 0 logs and reports (docs/scaling.md)."""
    from router_core import distributed
    from router_core.pipeline import train_from_spec
    from router_core.scorer import TrainHooks
    from router_core.specs import parse_training_spec
    from router_core.store import ModelStore

    if not distributed.is_main_process():
        logging.getLogger().setLevel(logging.WARNING)  # rank 0 tells; warnings and errors still show on every rank
    spec = parse_training_spec(read_spec_document(args.spec_file))
    outcome = train_from_spec(spec, ModelStore(), TrainHooks(progress=not args.no_progress))
    if outcome.rank != 0:
        return 0
    m = outcome.metrics
    print(f"saved {outcome.saved.ref} to {outcome.saved.path}")
    if "validation_mae" in m:  # a length model (task "length")
        print(_length_summary(m))
        return 0
    validation = ("no validation battles (data.validation_split is 0)" if m["validation_accuracy"] is None else
                  f"validation accuracy {m['validation_accuracy']:.4f} on {m['n_validation_decisive']}")  # fmt: skip
    print(f"train accuracy {m['train_accuracy']:.4f} on {m['n_train_decisive']} decisive battles; {validation}")
    return 0


def _length_summary(m: dict[str, Any]) -> str:
    if m["validation_mae"] is None:
        return f"train MAE {m['train_mae']:.1f} {m['tokenizer']} tokens on {m['n_train_answers']} answers; no validation answers"
    return (f"validation MAE {m['validation_mae']:.1f} {m['tokenizer']} tokens (per-model median baseline "
            f"{m['validation_baseline_mae']:.1f}), median ratio {m['validation_median_ratio']:.3f}, "
            f"rmse_log {m['validation_rmse_log']:.3f} on {m['n_validation_answers']} answers")
