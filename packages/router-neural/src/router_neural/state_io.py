"""Saving nested training state as safetensors (tensors) + JSON (everything else); no pickle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from router_core.errors import DataError
from router_core.store import read_json_object

_TENSOR = "__tensor__"


def split_tensors(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """`obj` with every tensor replaced by {"__tensor__": key}; the tensors go into `tensors` under those keys."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().clone().contiguous()
        return {_TENSOR: prefix}
    if isinstance(obj, dict):
        return {str(k): split_tensors(v, f"{prefix}.{k}", tensors) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [split_tensors(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    return obj


def join_tensors(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `split_tensors` (dict keys that were ints come back as ints, as torch state dicts expect)."""
    if isinstance(obj, dict):
        if set(obj) == {_TENSOR}:
            return tensors[obj[_TENSOR]]
        return {(int(k) if k.isdigit() else k): join_tensors(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [join_tensors(v, tensors) for v in obj]
    return obj


def save_state(directory: Path, stem: str, state: dict[str, Any]) -> None:
    """Write `state` as `<stem>.safetensors` + `<stem>.json`."""
    tensors: dict[str, torch.Tensor] = {}
    meta = split_tensors(state, stem, tensors)
    save_file(tensors, str(directory / f"{stem}.safetensors"))
    (directory / f"{stem}.json").write_text(json.dumps(meta, indent=1) + "\n")


def load_state(directory: Path, stem: str) -> dict[str, Any]:
    """Read what `save_state` wrote; a `DataError` naming the file when either file is missing or damaged."""
    tensor_file, json_file = directory / f"{stem}.safetensors", directory / f"{stem}.json"
    try:
        tensors = load_file(str(tensor_file))
    except Exception as error:  # noqa: BLE001 - safetensors raises its own error type for every kind of damage
        raise DataError(f"{tensor_file}: missing or damaged ({type(error).__name__}: {str(error)[:160]})") from None
    try:
        return join_tensors(read_json_object(json_file), tensors)
    except (KeyError, TypeError) as error:
        raise DataError(f"{json_file}: names a tensor that {tensor_file.name} does not hold ({error})") from None
