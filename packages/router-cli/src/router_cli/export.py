"""`router-cli export`: write a saved model as a directory that scores without torch (see router_runtime.export)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from router_core.errors import UserError


def _export_onnx(args: argparse.Namespace) -> None:
    from router_runtime.export import export_model

    manifest = export_model(args.model, args.output, quantize=args.quantize)
    parity = manifest.get("parity", {})
    if manifest["kind"] == "prompt_aware":
        print(f"parity on {parity['n_prompts']} prompts: max abs diff {parity['max_abs_diff']:.2e}, Spearman "
              f"{parity['spearman']:.4f}, same best model {parity['top1_agreement']:.1%}")  # fmt: skip


FORMATS: dict[str, Callable[[argparse.Namespace], None]] = {"onnx": _export_onnx}
"""--format -> the function that writes it."""


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    parser = sub.add_parser("export", help="export a saved model for torch-free, low-latency serving")
    parser.add_argument("--model", required=True, metavar="TYPE/NAME", help="the saved model to export")
    parser.add_argument("--output", required=True, metavar="DIR", help="directory to write (empty, or an earlier export)")
    parser.add_argument("--quantize", choices=("none", "int8"), default="none",
                        help="int8: dynamic int8 weights for the encoder (checked against the torch model)")  # fmt: skip
    parser.add_argument("--format", choices=tuple(FORMATS), default="onnx", help="onnx (default): an exported directory")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Export and print the output directory."""
    if args.format not in FORMATS:
        raise UserError(f"unknown --format {args.format!r}")
    FORMATS[args.format](args)
    print(args.output)
    return 0
