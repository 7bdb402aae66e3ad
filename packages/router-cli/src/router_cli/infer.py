"""`router-cli infer`: score every candidate model for every prompt and write `{model: [score per prompt]}`; for a
length model (dn_embedding_length_prediction) the values are predicted answer lengths in tokens."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from router_cli._output import bounded_int, write_json_output
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
    parser.add_argument("--batch-size", type=bounded_int(1, 1_048_576), default=128,
                        help="prompts per scoring batch (default 128)")  # fmt: skip
    parser.add_argument("--output-path", help="JSON output (default inference_outputs/{timestamp}_{model_name}.json)")
    parser.add_argument("--backend", choices=("auto", "torch", "onnx", "triton"), default="auto",
                        help="auto (default): triton on a CUDA GPU, else onnx for an exported directory, torch for "
                        "TYPE/NAME")  # fmt: skip
    parser.add_argument("--threads", type=bounded_int(1, 4096), help="ONNX Runtime intra-op threads (default: the available cores)")
    parser.set_defaults(run=run)


def read_prompts_file(path: str) -> list[str]:
    """Prompts from a text file (one per line) or JSONL (a string `prompt` field); blank lines are skipped.

    A line that is not UTF-8 text, or a JSONL line without a string prompt, is an error naming the file and line.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise UserError(f"cannot read prompts file {path}: {error.strerror}") from error
    lines: list[tuple[int, str]] = []
    for number, chunk in enumerate(raw.splitlines(), start=1):
        try:
            line = chunk.decode("utf-8")
        except UnicodeDecodeError:
            raise UserError(f"{path} line {number}: not UTF-8 text (is it a binary file?)") from None
        if "\x00" in line:
            raise UserError(f"{path} line {number}: contains a NUL byte (is it a binary file?)")
        if line.strip():
            lines.append((number, line))
    if lines and all(line.lstrip().startswith("{") for _, line in lines):
        return [_jsonl_prompt(path, number, line) for number, line in lines]
    return [line.replace("\\n", "\n") for _, line in lines]


def _jsonl_prompt(path: str, number: int, line: str) -> str:
    try:
        row = json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        row = None
    prompt = row.get("prompt") if isinstance(row, dict) else None
    if not isinstance(prompt, str):
        raise UserError(f"{path} line {number}: expected a JSON object with a string 'prompt' field")
    return prompt


def run(args: argparse.Namespace) -> int:
    """Load the model, score, write the JSON file and print its path."""
    from router_core.scoring import score_models

    prompts = args.prompts if args.prompts is not None else read_prompts_file(args.prompts_file)
    if not prompts:
        raise UserError("no prompts to score")
    predicted = predict_lengths(args.model, args.backend, prompts, args.models_to_score, args.batch_size, args.threads)
    if predicted is not None:  # a length model: predicted answer lengths in tokens, same JSON shape
        scores, name = predicted
    else:
        scorer, name = load_for_scoring(args.model, args.backend, args.threads)
        scores = score_models(scorer, prompts, args.models_to_score, args.batch_size)
    result = {model: [float(s) for s in scores[:, j]] for j, model in enumerate(args.models_to_score)}
    if args.output_path:
        output = write_json_output(Path(args.output_path), result)
    else:  # never replaces another run's file (a second run in the same second gets a -2 suffix)
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        output = write_json_output(Path("inference_outputs") / f"{stamp}_{name}.json", result, exclusive=True)
    print(output)
    return 0


def predict_lengths(model: str, backend: str, prompts: list[str], models: list[str], batch_size: int,
                    threads: int | None = None) -> tuple[Any, str] | None:  # fmt: skip
    """Predicted lengths (n_prompts, n_models) and the model's name when --model is a length model (saved, or an
    exported directory), else None."""
    from router_runtime.lengths import is_length_model, load_length_model

    if not is_length_model(model, check_files=False):  # the load below checks the export's files, once
        return None
    if is_exported_dir(model):
        if backend not in ("auto", "onnx"):
            raise UserError(f"{model} is an exported length model; it runs on the onnx backend only (--backend auto "
                            "or onnx)")  # fmt: skip
        name = Path(model).resolve().name
    else:
        from router_core.store import ModelStore

        saved = ModelStore().resolve(model)
        if backend not in ("auto", "torch"):
            raise UserError(f"{saved.ref} is a length model; it runs on the torch backend only (--backend auto or "
                            "torch), or export it (router-cli export) for onnx")  # fmt: skip
        name = saved.name
    return load_length_model(model, threads).predict_lengths(prompts, models, batch_size), name


def is_exported_dir(model: str) -> bool:
    """Whether --model names an exported directory (one holding a manifest.json) rather than TYPE/NAME."""
    from router_runtime.lengths import is_exported

    return is_exported(model)


def load_for_scoring(model: str, backend: str, threads: int | None = None) -> tuple[Any, str]:
    """The scorer for --model on --backend, and the name for the default output file.

    An exported directory loads torch-free (onnx, or triton on a GPU); TYPE/NAME loads the saved model's own scorer
    (torch), or its encoder with the fused Triton head (triton).
    """
    from router_runtime.backends import select_backend

    if is_exported_dir(model):
        from router_runtime import load_exported

        select_backend(backend, exported=True)  # a choice that cannot work here fails whatever the export holds
        return load_exported(model, backend, threads), Path(model).resolve().name  # auto: resolved by its head
    from router_core.store import ModelStore

    saved = ModelStore().resolve(model)
    if select_backend(backend, exported=False, two_tower=saved.model_type == "transformer_embedding") == "triton":
        from router_runtime.backends.triton import TritonScorer

        return TritonScorer.from_saved(saved), saved.name
    from router_core.pipeline import load_scorer

    return load_scorer(saved), saved.name
