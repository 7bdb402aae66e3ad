"""`router-cli infer`: score every candidate model for every prompt and write `{model: [score per prompt]}`."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from router_core.errors import UserError


def add_parser(sub: Any) -> None:
    """Register the subcommand."""
    parser = sub.add_parser("infer", help="score candidate models for prompts with a trained model")
    parser.add_argument("--model", required=True, metavar="DIR|TYPE/NAME",
                        help="an exported directory (router-cli export) or a saved model as TYPE/NAME")  # fmt: skip
    parser.add_argument("--models-to-score", nargs="+", required=True, metavar="MODEL", help="candidate LLM names")
    prompts = parser.add_mutually_exclusive_group(required=True)
    prompts.add_argument("--prompts", nargs="+", metavar="PROMPT", help="prompts to score")
    prompts.add_argument("--prompts-file", help="one prompt per line, or JSONL with a 'prompt' field")
    parser.add_argument("--batch-size", type=int, default=128, help="prompts per scoring batch (default 128)")
    parser.add_argument("--output-path", help="JSON output (default inference_outputs/{timestamp}_{model_name}.json)")
    parser.add_argument("--backend", choices=("auto", "torch", "onnx", "triton"), default="auto",
                        help="auto (default): triton on a CUDA GPU, else onnx for an exported directory, torch for "
                        "TYPE/NAME")  # fmt: skip
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (default: the available cores)")
    parser.set_defaults(run=run)


def read_prompts_file(path: str) -> list[str]:
    """Prompts from a text file (one per line) or JSONL (`prompt` field); blank lines are skipped."""
    try:
        lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as error:
        raise UserError(f"cannot read prompts file {path}: {error.strerror}") from error
    if lines and all(line.lstrip().startswith("{") for line in lines):
        prompts = []
        for number, line in enumerate(lines, start=1):
            try:
                prompts.append(str(json.loads(line)["prompt"]))
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise UserError(f"{path} line {number}: expected a JSON object with a 'prompt' field") from error
        return prompts
    return [line.replace("\\n", "\n") for line in lines]


def run(args: argparse.Namespace) -> int:
    """Load the model, score, write the JSON file and print its path."""
    from router_core.scoring import score_models

    if args.batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise UserError("--threads must be at least 1")
    prompts = args.prompts if args.prompts is not None else read_prompts_file(args.prompts_file)
    if not prompts:
        raise UserError("no prompts to score")
    scorer, name = load_for_scoring(args.model, args.backend, args.threads)
    scores = score_models(scorer, prompts, args.models_to_score, args.batch_size)
    result = {model: [float(s) for s in scores[:, j]] for j, model in enumerate(args.models_to_score)}
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    output = Path(args.output_path or Path("inference_outputs") / f"{stamp}_{name}.json")
    write_json_atomic(output, result)
    print(output)
    return 0


def is_exported_dir(model: str) -> bool:
    """Whether --model names an exported directory (one holding a manifest.json) rather than TYPE/NAME."""
    return (Path(model) / "manifest.json").is_file()


def load_for_scoring(model: str, backend: str, threads: int | None = None) -> tuple[Any, str]:
    """The scorer for --model on --backend, and the name for the default output file.

    An exported directory loads torch-free (onnx, or triton on a GPU); TYPE/NAME loads the saved model's own scorer
    (torch), or its encoder with the fused Triton head (triton).
    """
    from router_runtime.backends import select_backend

    if is_exported_dir(model):
        from router_runtime import load_exported

        return load_exported(model, select_backend(backend, exported=True), threads), Path(model).resolve().name
    from router_core.store import ModelStore

    saved = ModelStore().resolve(model)
    if select_backend(backend, exported=False) == "triton":
        from router_runtime.backends.triton import TritonScorer

        return TritonScorer.from_saved(saved), saved.name
    from router_core.pipeline import load_scorer

    return load_scorer(saved), saved.name


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON through a temporary file and a rename, creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)
