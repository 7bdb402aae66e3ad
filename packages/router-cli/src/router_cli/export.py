"""`router-cli export`: write a saved model as a directory that scores without torch (see router_runtime.export)."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from router_core.errors import UserError


def _export_onnx(args: argparse.Namespace, output: Path | None = None) -> None:
    from router_runtime.export import export_model

    manifest = export_model(args.model, output or args.output, quantize=args.quantize)
    parity = manifest.get("parity", {})
    if manifest["kind"] == "length":
        print(f"parity on {parity['n_prompts']} prompts: predicted lengths differ by up to {parity['max_rel_diff']:.2e} "
              f"relative, Spearman {parity['spearman']:.4f}")  # fmt: skip
    elif manifest["kind"] in ("prompt_aware", "trees"):
        print(f"parity on {parity['n_prompts']} prompts: max abs diff {parity['max_abs_diff']:.2e}, Spearman "
              f"{parity['spearman']:.4f}, same best model {parity['top1_agreement']:.1%}")  # fmt: skip


def _export_triton_repo(args: argparse.Namespace) -> None:
    """A Triton model repository, from an exported directory given as --model or from a fresh export."""
    from router_runtime.manifest import MANIFEST
    from router_runtime.triton_repo import TritonOptions, write_triton_repo

    options = TritonOptions(args.triton_name, args.triton_max_batch_size, args.triton_queue_delay_us)
    if (Path(args.model) / MANIFEST).is_file():
        models = write_triton_repo(Path(args.model), Path(args.output), options)
    else:
        with tempfile.TemporaryDirectory(prefix="router-export-") as scratch:
            _export_onnx(args, Path(scratch) / "exported")
            models = write_triton_repo(Path(scratch) / "exported", Path(args.output), options)
    print(f"Triton model repository: {', '.join(models)} (clients call {options.name!r})")


FORMATS: dict[str, Callable[[argparse.Namespace], None]] = {"onnx": _export_onnx, "triton-repo": _export_triton_repo}
"""--format -> the function that writes it."""


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    parser = sub.add_parser("export", help="export a saved model for torch-free, low-latency serving")
    parser.add_argument("--model", required=True, metavar="TYPE/NAME",
                        help="the saved model to export (or, with --format triton-repo, an exported directory)")
    parser.add_argument("--output", required=True, metavar="DIR", help="directory to write (empty, or an earlier export)")
    parser.add_argument("--quantize", choices=("none", "int8"), default="none",
                        help="int8: dynamic int8 weights for the encoder (checked against the torch model)")  # fmt: skip
    parser.add_argument("--format", choices=tuple(FORMATS), default="onnx",
                        help="onnx (default): an exported directory; triton-repo: a Triton Inference Server model "
                        "repository (docs/serving.md)")
    triton = parser.add_argument_group("triton-repo")
    triton.add_argument("--triton-name", default="router", help="model name clients call (default router)")
    triton.add_argument("--triton-max-batch-size", type=int, default=64, help="max_batch_size (default 64)")
    triton.add_argument("--triton-queue-delay-us", type=int, default=2000,
                        help="dynamic batching max_queue_delay_microseconds (default 2000)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Export and print the output directory."""
    if args.format not in FORMATS:
        raise UserError(f"unknown --format {args.format!r}")
    FORMATS[args.format](args)
    print(args.output)
    return 0
