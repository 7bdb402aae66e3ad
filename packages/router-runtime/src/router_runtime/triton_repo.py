"""An NVIDIA Triton Inference Server model repository from an exported directory: `write_triton_repo(dir, out)`.

Prompt-aware models become an ensemble `<name>` of three models, each with dynamic batching:

    <name>_preprocess  python backend: PROMPT -> input_ids, attention_mask (padded to a length bucket, so requests
                       of similar length batch together in the encoder) and the scaled prompt FEATURES
    <name>_encoder     onnxruntime backend: the exported model.onnx -> sentence embedding
    <name>_head        python backend: embedding [+ features], MODELS -> SCORES, BEST_MODEL, BEST_SCORE

Prompt-agnostic models are one python model `<name>` over their score table, with the same inputs and outputs.
The python models are `router_runtime.triton_python`, so Triton's Python environment needs `router-runtime`
installed. Configs are written as protobuf text; the tests parse each into Triton's `ModelConfig`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router_core.errors import UserError
from router_core.features import N_FEATURES
from router_runtime.encoder import ENCODER_JSON, ENCODER_ONNX, TOKENIZER
from router_runtime.exported import SCALER
from router_runtime.head import HEAD_JSON, HEAD_WEIGHTS
from router_runtime.manifest import MANIFEST, read_manifest

CONFIG = "config.pbtxt"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_ORT_TYPES = {"tensor(int64)": "TYPE_INT64", "tensor(int32)": "TYPE_INT32"}


class Enum(str):
    """A bare identifier in protobuf text (TYPE_FP32, KIND_CPU), as opposed to a quoted string."""


@dataclass(frozen=True)
class TritonOptions:
    """How the repository batches."""

    name: str = "router"
    """Name of the model clients call (the ensemble); its steps are `<name>_preprocess` etc."""
    max_batch_size: int = 64
    """Largest batch Triton forms for one model (prompts, across requests)."""
    max_queue_delay_us: int = 2000
    """How long Triton's dynamic batcher waits to fill a batch, in microseconds."""
    pad_buckets: tuple[int, ...] = (16, 32, 64, 128, 256)
    """Token lengths the preprocess step pads to (the encoder only batches requests of one length)."""

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise UserError(f"Triton model name {self.name!r}: use letters, digits, _ and - (starting with a letter)")
        if self.max_batch_size < 1 or self.max_queue_delay_us < 0 or not self.pad_buckets or min(self.pad_buckets) < 1:
            raise UserError(f"invalid Triton batching options: {self}")


def write_triton_repo(exported: Path, output: Path, options: TritonOptions | None = None) -> list[str]:
    """Write a Triton model repository for the exported directory `exported` into `output`; returns model names.

    `output` must not exist or be empty; it is written in a temporary sibling and renamed into place.
    """
    options = options or TritonOptions()
    manifest = read_manifest(exported)  # refuses a missing or altered file
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise UserError(f"--output {output} exists and is not an empty directory")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    try:
        if manifest["kind"] == "score_table":
            models = _write_table_model(exported, tmp, manifest, options)
        else:
            models = _write_ensemble(exported, tmp, manifest, options)
        if output.exists():
            output.rmdir()
        os.replace(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return models


# -- the models ----------------------------------------------------------------------------------------------------
def _tensor(name: str, data_type: str, dims: list[int], **extra: Any) -> dict[str, Any]:
    return {"name": name, "data_type": Enum(data_type), "dims": dims, **extra}


def _client_io() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Inputs and outputs of the model clients call (the same for both kinds of repository)."""
    inputs = [_tensor("PROMPT", "TYPE_STRING", [1]), _tensor("MODELS", "TYPE_STRING", [-1])]
    outputs = [_tensor("SCORES", "TYPE_FP64", [-1]), _tensor("BEST_MODEL", "TYPE_STRING", [1]),
               _tensor("BEST_SCORE", "TYPE_FP64", [1])]  # fmt: skip
    return inputs, outputs


def _batching(options: TritonOptions) -> dict[str, Any]:
    return {"max_queue_delay_microseconds": options.max_queue_delay_us}


def _python_model(name: str, options: TritonOptions, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]],
                  parameters: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    config: dict[str, Any] = {"name": name, "backend": "python", "max_batch_size": options.max_batch_size,
                              "input": inputs, "output": outputs, "dynamic_batching": _batching(options),
                              "instance_group": [{"count": 1, "kind": Enum("KIND_CPU")}]}  # fmt: skip
    if parameters:
        config["parameters"] = [{"key": k, "value": {"string_value": v}} for k, v in parameters.items()]
    return config


def ensemble_configs(manifest: dict[str, Any], encoder: dict[str, Any], ids_type: str, embedding_name: str,
                     options: TritonOptions) -> dict[str, dict[str, Any]]:  # fmt: skip
    """The four model configs of a prompt-aware repository, as nested dicts (see `render_pbtxt`).

    Args:
        manifest: the exported directory's manifest.
        encoder: its encoder.json (dimension, max_seq_length).
        ids_type: Triton type of the ONNX graph's token inputs (TYPE_INT64 or TYPE_INT32).
        embedding_name: the ONNX graph's output name.
        options: names and batching.
    """
    name, features = options.name, bool(manifest["use_prompt_features"])
    dim, max_len = int(encoder["dimension"]), int(encoder["max_seq_length"])
    buckets = sorted({min(b, max_len) for b in options.pad_buckets} | {max_len})
    tokens = [_tensor("input_ids", ids_type, [-1]), _tensor("attention_mask", ids_type, [-1])]
    feature_tensor = [_tensor("FEATURES", "TYPE_FP32", [N_FEATURES])] if features else []
    client_inputs, client_outputs = _client_io()
    preprocess = _python_model(f"{name}_preprocess", options, [client_inputs[0]], tokens + feature_tensor,
                               {"pad_buckets": ",".join(map(str, buckets))})  # fmt: skip
    encoder_model: dict[str, Any] = {"name": f"{name}_encoder", "backend": "onnxruntime", "max_batch_size": options.max_batch_size,
                     "input": tokens, "output": [_tensor(embedding_name, "TYPE_FP32", [dim])],
                     "dynamic_batching": _batching(options)}  # fmt: skip
    head = _python_model(f"{name}_head", options,
                         [_tensor("EMBEDDING", "TYPE_FP32", [dim]), *feature_tensor, client_inputs[1]], client_outputs)
    steps = [
        _step(f"{name}_preprocess", {"PROMPT": "PROMPT"},
              {"input_ids": "input_ids", "attention_mask": "attention_mask"} | ({"FEATURES": "features"} if features
                                                                              else {})),
        _step(f"{name}_encoder", {"input_ids": "input_ids", "attention_mask": "attention_mask"},
              {embedding_name: "embedding"}),
        _step(f"{name}_head", {"EMBEDDING": "embedding", "MODELS": "MODELS"} | ({"FEATURES": "features"} if features
                                                                               else {}),
              {t["name"]: t["name"] for t in client_outputs}),
    ]  # fmt: skip
    ensemble = {"name": name, "platform": "ensemble", "max_batch_size": options.max_batch_size,
                "input": client_inputs, "output": client_outputs, "ensemble_scheduling": {"step": steps}}  # fmt: skip
    return {name: ensemble, preprocess["name"]: preprocess, encoder_model["name"]: encoder_model, head["name"]: head}


def _step(model: str, inputs: dict[str, str], outputs: dict[str, str]) -> dict[str, Any]:
    return {"model_name": model, "model_version": -1,
            "input_map": [{"key": k, "value": v} for k, v in inputs.items()],
            "output_map": [{"key": k, "value": v} for k, v in outputs.items()]}  # fmt: skip


def table_config(options: TritonOptions) -> dict[str, Any]:
    """The one model config of a prompt-agnostic repository."""
    inputs, outputs = _client_io()
    return _python_model(options.name, options, inputs, outputs)


def _write_ensemble(exported: Path, repo: Path, manifest: dict[str, Any], options: TritonOptions) -> list[str]:
    encoder = json.loads((exported / ENCODER_JSON).read_text())
    ids_type, embedding_name = _onnx_io(exported / ENCODER_ONNX)
    configs = ensemble_configs(manifest, encoder, ids_type, embedding_name, options)
    name = options.name
    files = {
        name: [MANIFEST],  # provenance, next to the ensemble (whose version directory is otherwise empty)
        f"{name}_preprocess": [TOKENIZER, ENCODER_JSON] + ([SCALER] if manifest["use_prompt_features"] else []),
        f"{name}_encoder": [ENCODER_ONNX],
        f"{name}_head": [HEAD_JSON, HEAD_WEIGHTS],
    }
    shims = {f"{name}_preprocess": "Preprocess", f"{name}_head": "Head"}
    for model, config in configs.items():
        _write_model(repo, model, config, exported, files[model], shims.get(model))
    return list(configs)


def _write_table_model(exported: Path, repo: Path, manifest: dict[str, Any], options: TritonOptions) -> list[str]:
    # The whole exported directory, manifest included, so the model loads it with router_runtime.load_exported.
    _write_model(repo, options.name, table_config(options), exported, [MANIFEST, *manifest["files"]], "ScoreTable")
    return [options.name]


def _write_model(repo: Path, model: str, config: dict[str, Any], exported: Path, files: list[str],
                 shim: str | None) -> None:  # fmt: skip
    version = repo / model / "1"
    version.mkdir(parents=True)
    (repo / model / CONFIG).write_text(render_pbtxt(config))
    for file in files:
        shutil.copyfile(exported / file, version / file)
    if shim:
        (version / "model.py").write_text(f'"""Triton Python-backend model: {model}."""\n\n'
                                          f"from router_runtime.triton_python import {shim} as TritonPythonModel\n\n"
                                          f'__all__ = ["TritonPythonModel"]\n')  # fmt: skip


def _onnx_io(path: Path) -> tuple[str, str]:
    """Triton type of the graph's token inputs and the name of its output, read with ONNX Runtime."""
    from router_runtime.encoder import onnxruntime_module

    session = onnxruntime_module().InferenceSession(str(path), providers=["CPUExecutionProvider"])
    types = {i.name: i.type for i in session.get_inputs()}
    if set(types) != {"input_ids", "attention_mask"} or len(set(types.values())) != 1:
        raise UserError(f"{path}: expected inputs input_ids and attention_mask of one integer type, found {types}")
    ids_type = next(iter(types.values()))
    if ids_type not in _ORT_TYPES:
        raise UserError(f"{path}: token inputs of type {ids_type}; Triton configs are written for int64 or int32")
    return _ORT_TYPES[ids_type], session.get_outputs()[0].name


# -- protobuf text -------------------------------------------------------------------------------------------------
def render_pbtxt(message: dict[str, Any], indent: int = 0) -> str:
    """Protobuf text format of a message given as nested dicts: lists of dicts are repeated messages, lists of
    scalars repeated fields, `Enum` values bare identifiers; map fields are lists of {"key", "value"}."""
    pad = "  " * indent
    lines = []
    for key, value in message.items():
        if isinstance(value, dict):
            lines += [f"{pad}{key} {{", render_pbtxt(value, indent + 1).rstrip("\n"), f"{pad}}}"]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                lines += [f"{pad}{key} {{", render_pbtxt(item, indent + 1).rstrip("\n"), f"{pad}}}"]
        elif isinstance(value, list):
            lines.append(f"{pad}{key}: [{', '.join(_scalar(v) for v in value)}]")
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}")
    return "\n".join(line for line in lines if line) + "\n"


def _scalar(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if not value.isascii():
            raise ValueError(f"non-ASCII string in a Triton config: {value!r}")
        return json.dumps(value)  # ASCII JSON escapes (\" \\ \n) are valid protobuf text escapes
    if isinstance(value, int | float):
        return repr(value)
    raise TypeError(f"cannot write {type(value).__name__} in protobuf text")
