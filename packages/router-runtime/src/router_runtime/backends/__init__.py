"""Backends: which implementation scores a model, chosen by `select_backend`.

- `torch`: the saved model's own scorer (router-neural), the reference.
- `onnx`: an exported directory: ONNX Runtime encoder (CUDA provider when a GPU is present) + the numpy head.
- `triton`: the same encoder on the GPU + the fused Triton head (`backends/triton.py`); a saved model gets its
  torch encoder + the Triton head.

Every head implementation is a `HeadRunner`: x (n, input_dim) float32 and model rows (k,) -> scores (n, k).
"""

from __future__ import annotations

import ctypes
import importlib.util
from functools import cache
from typing import Literal, Protocol

import numpy as np

from router_core.errors import UserError

BackendName = Literal["auto", "torch", "onnx", "triton"]
BACKENDS: tuple[str, ...] = ("auto", "torch", "onnx", "triton")
TWO_TOWER_ON_TRITON = ("the triton backend has no kernel for a two-tower head (transformer_embedding); use the onnx "
                       "backend for an exported model, torch for a saved one")  # fmt: skip


class HeadRunner(Protocol):
    """Scores of prompts x (n, input_dim) against the head's models at `rows` (k,): shape (n, k), float32."""

    def __call__(self, x: np.ndarray, rows: np.ndarray) -> np.ndarray: ...


@cache
def cuda_available() -> bool:
    """Whether a CUDA device is visible, asked of the driver (libcuda) so that no torch import is needed."""
    try:
        libcuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    count = ctypes.c_int(0)
    return libcuda.cuInit(0) == 0 and libcuda.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0


def triton_usable() -> bool:
    """CUDA is there and triton + torch are installed (the `triton` extra)."""
    return cuda_available() and all(importlib.util.find_spec(name) is not None for name in ("triton", "torch"))


def select_backend(requested: str = "auto", exported: bool = True, two_tower: bool = False) -> str:
    """The backend to use: `requested` unless it is "auto", else the fastest available one.

    auto: triton when a CUDA GPU and the triton extra are there and the head is not a two-tower head
    (transformer_embedding's, which the Triton kernel does not compute); otherwise onnx for an exported directory
    and torch for a saved model. An explicit choice that cannot work here is a UserError.
    """
    if requested not in BACKENDS:
        raise UserError(f"unknown backend {requested!r}; choose one of {', '.join(BACKENDS)}")
    if requested == "auto":
        return "triton" if triton_usable() and not two_tower else "onnx" if exported else "torch"
    if requested == "triton" and two_tower:
        raise UserError(TWO_TOWER_ON_TRITON)
    if requested == "triton" and not triton_usable():
        raise UserError("the triton backend needs a CUDA GPU and the triton extra (router-runtime[triton])")
    if requested == "onnx" and not exported:
        raise UserError("the onnx backend scores exported models: run `router-cli export` first and pass its directory")
    if requested == "torch" and exported:
        raise UserError("the torch backend scores saved models (TYPE/NAME); an exported directory runs on onnx or "
                        "triton (its manifest names the source model)")  # fmt: skip
    return requested
