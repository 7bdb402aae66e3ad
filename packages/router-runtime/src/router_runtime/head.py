"""The scoring head as plain arrays, its numpy reference implementation, and its files (head.json + head.safetensors).

The prompt-aware networks (dense_network's MLP, dn_embedding's residual blocks, transformer_embedding's two-tower
MLP) are one `Head`:

    u      = prompt_stage(x)                      x: embedding [+ scaled features] of a prompt, u: (d_u,)
    z_1    = act(norm_1(W_u u + b_1 + M[m])) + (S_u u + S_m[m])      first layer, split by side
    z_l    = act(norm_l(W_l z_{l-1} + b_l)) + S_l z_{l-1}            later layers (norm and shortcut optional)
    head   = w_out . z_L + b_out + bias[m]
    score  = base[m] + alpha * head

Two-tower form (transformer_embedding, `model_scale` set): the first layer reads the element-wise product of the
prompt tower u and the model tower T[m] (k, d_u), v = u * T[m], instead of u:

    z_1    = act(norm_1(W_u v + b_1 + M[m])) + (S_u v + S_m[m])      (M and S_m zero for transformer_embedding)

`M` (and `S_m`) are the model side of the first layer, precomputed per model at export, so the
(prompt x model) concatenation of the torch networks is never built: the per-prompt side costs one matrix
product per prompt, the per-model side nothing at inference. `base` and `alpha` default to 0 and 1; a scorer
fitted on residuals of a prompt-agnostic base model fills them. head.json's format is 1, or 2 for a two-tower head
(so a reader that knows only format 1 refuses it rather than score without the model tower).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

HEAD_JSON, HEAD_WEIGHTS = "head.json", "head.safetensors"
HEAD_FORMAT, TWO_TOWER_FORMAT = 1, 2
LEAKY_SLOPE = 0.1
"""Negative slope of every LeakyReLU in the prompt-aware networks."""


@dataclass(frozen=True)
class Projection:
    """One slice of the prompt input mapped by LeakyReLU(W x[start:stop] + b); W shape (d_out, stop - start)."""

    start: int
    stop: int
    weight: np.ndarray
    bias: np.ndarray


@dataclass(frozen=True)
class Layer:
    """act(norm(W z + b)) + S z for one hidden layer; W and S shape (d_out, d_in), norm: LayerNorm or none."""

    weight: np.ndarray
    bias: np.ndarray
    norm_weight: np.ndarray | None = None
    norm_bias: np.ndarray | None = None
    norm_eps: float = 1e-5
    shortcut: np.ndarray | None = None

    @property
    def width(self) -> int:
        """Output width."""
        return int(self.weight.shape[0])


@dataclass(frozen=True)
class Head:
    """Fitted head arrays (float32) of one scorer over `models` (see the module docstring for the formula).

    `layers[0]` holds the prompt side (W_u, S_u) of the first layer; `model_side` (k, d_1) and
    `model_shortcut` (k, d_1) hold its per-model side.
    """

    models: tuple[str, ...]
    input_dim: int
    """Width of x: the sentence embedding plus the scaled prompt features when the model uses them."""
    projections: tuple[Projection, ...]
    """Prompt stage: empty means u = x; otherwise u = concatenation of the projections."""
    layers: tuple[Layer, ...]
    model_side: np.ndarray
    model_shortcut: np.ndarray | None
    out_weight: np.ndarray
    out_bias: float
    model_bias: np.ndarray
    base: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    """Per-model base score, shape (k,); zeros unless the scorer was fitted on residuals of a base model."""
    alpha: float = 1.0
    model_scale: np.ndarray | None = None
    """Two-tower form only: the model tower T, shape (k, d_u), multiplied element-wise into the prompt stage's u."""

    @property
    def two_tower(self) -> bool:
        """Whether the head is in two-tower form (its first layer reads u * T[m])."""
        return self.model_scale is not None

    def __post_init__(self) -> None:
        if self.base.size == 0:
            object.__setattr__(self, "base", np.zeros(len(self.models), dtype=np.float32))

    def with_base(self, base: np.ndarray, alpha: float) -> Head:
        """The same head with a per-model base score (k,) and a scale alpha on the head's output."""
        return replace(self, base=np.asarray(base, dtype=np.float32), alpha=float(alpha))


def leaky_relu(x: np.ndarray) -> np.ndarray:
    """LeakyReLU with the networks' slope, in place-friendly form."""
    return np.where(x > 0, x, x * np.float32(LEAKY_SLOPE))


def prompt_stage(head: Head, x: np.ndarray) -> np.ndarray:
    """u, shape (n, d_u), of prompt inputs x (n, input_dim): x itself, or the concatenated projections."""
    if not head.projections:
        return x
    return np.concatenate([leaky_relu(x[:, p.start : p.stop] @ p.weight.T + p.bias) for p in head.projections], axis=1)


def prompt_side(head: Head, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-prompt part of the first layer: W_u u + b_1 and S_u u, each shape (n, d_1), from x (n, input_dim)."""
    u = prompt_stage(head, x)
    first = head.layers[0]
    return u @ first.weight.T + first.bias, (u @ first.shortcut.T if first.shortcut is not None else None)


def _layer_norm(z: np.ndarray, layer: Layer) -> np.ndarray:
    if layer.norm_weight is None:
        return z
    mean = z.mean(axis=-1, keepdims=True)
    var = ((z - mean) ** 2).mean(axis=-1, keepdims=True)
    return (z - mean) / np.sqrt(var + np.float32(layer.norm_eps)) * layer.norm_weight + layer.norm_bias


def _two_tower_first_layer(head: Head, x: np.ndarray, model_side: np.ndarray, model_shortcut: np.ndarray | None,
                           model_scale: np.ndarray) -> np.ndarray:  # fmt: skip
    """z_1, shape (n, k, d_1), of a two-tower head: the first layer over v = u * T[m] (n, k, d_u)."""
    first = head.layers[0]
    v = prompt_stage(head, x)[:, None, :] * model_scale[None]
    z = leaky_relu(_layer_norm(v @ first.weight.T + first.bias + model_side[None], first))
    if first.shortcut is not None and model_shortcut is not None:
        z = z + v @ first.shortcut.T + model_shortcut[None]
    return z


def score_rows(head: Head, x: np.ndarray, rows: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Scores, shape (n, len(rows)), float32, of prompts x (n, input_dim) against models `rows` (indices).

    The numpy reference of every backend; prompts go in chunks so memory stays (chunk, k, width).
    """
    out = np.empty((len(x), len(rows)), dtype=np.float32)
    model_side = head.model_side[rows]
    model_shortcut = head.model_shortcut[rows] if head.model_shortcut is not None else None
    model_scale = head.model_scale[rows] if head.model_scale is not None else None
    for start in range(0, len(x), chunk):
        if model_scale is not None:
            z = _two_tower_first_layer(head, x[start : start + chunk], model_side, model_shortcut, model_scale)
        else:
            a, s = prompt_side(head, x[start : start + chunk])
            z = leaky_relu(_layer_norm(a[:, None, :] + model_side[None], head.layers[0]))
            if s is not None and model_shortcut is not None:
                z = z + s[:, None, :] + model_shortcut[None]
        for layer in head.layers[1:]:
            h = leaky_relu(_layer_norm(z @ layer.weight.T + layer.bias, layer))
            z = h + z @ layer.shortcut.T if layer.shortcut is not None else h
        out[start : start + chunk] = z @ head.out_weight + np.float32(head.out_bias)
    return head.base[rows] + np.float32(head.alpha) * (out + head.model_bias[rows])


# -- files ---------------------------------------------------------------------------------------------------------
def save_head(head: Head, directory: Path) -> list[str]:
    """Write head.json (structure, model names) and head.safetensors (arrays); returns the file names."""
    from safetensors.numpy import save_file

    arrays: dict[str, np.ndarray] = {"model_side": head.model_side, "out_weight": head.out_weight,
                                     "model_bias": head.model_bias, "base": head.base}  # fmt: skip
    if head.model_shortcut is not None:
        arrays["model_shortcut"] = head.model_shortcut
    if head.model_scale is not None:
        arrays["model_scale"] = head.model_scale
    for i, p in enumerate(head.projections):
        arrays |= {f"projections.{i}.weight": p.weight, f"projections.{i}.bias": p.bias}
    for i, layer in enumerate(head.layers):
        for name in ("weight", "bias", "norm_weight", "norm_bias", "shortcut"):
            value = getattr(layer, name)
            if value is not None:
                arrays[f"layers.{i}.{name}"] = value
    config = {
        "format": TWO_TOWER_FORMAT if head.two_tower else HEAD_FORMAT,
        "models": list(head.models),
        "input_dim": head.input_dim,
        "projections": [{"start": p.start, "stop": p.stop} for p in head.projections],
        "layers": [{"norm_eps": layer.norm_eps} for layer in head.layers],
        "out_bias": head.out_bias,
        "alpha": head.alpha,
        "activation": {"leaky_relu": LEAKY_SLOPE},
    }
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}, str(directory / HEAD_WEIGHTS))
    (directory / HEAD_JSON).write_text(json.dumps(config, indent=1) + "\n")
    return [HEAD_JSON, HEAD_WEIGHTS]


def load_head(directory: Path) -> Head:
    """Read what `save_head` wrote; a ValueError names what is missing or inconsistent."""
    from safetensors.numpy import load_file

    config = json.loads((directory / HEAD_JSON).read_text())
    if config.get("format") not in (HEAD_FORMAT, TWO_TOWER_FORMAT):
        raise ValueError(f"{HEAD_JSON}: head format {config.get('format')!r}, this version reads {HEAD_FORMAT} and "
                         f"{TWO_TOWER_FORMAT}")  # fmt: skip
    arrays = load_file(str(directory / HEAD_WEIGHTS))

    def get(key: str) -> np.ndarray:
        if key not in arrays:
            raise ValueError(f"{HEAD_WEIGHTS} lacks the array {key!r}")
        return arrays[key]

    projections = tuple(Projection(int(p["start"]), int(p["stop"]), get(f"projections.{i}.weight"),
                                   get(f"projections.{i}.bias")) for i, p in enumerate(config["projections"]))  # fmt: skip
    layers = tuple(
        Layer(get(f"layers.{i}.weight"), get(f"layers.{i}.bias"), arrays.get(f"layers.{i}.norm_weight"),
              arrays.get(f"layers.{i}.norm_bias"), float(spec["norm_eps"]), arrays.get(f"layers.{i}.shortcut"))
        for i, spec in enumerate(config["layers"])
    )  # fmt: skip
    head = Head(tuple(config["models"]), int(config["input_dim"]), projections, layers, get("model_side"),
                arrays.get("model_shortcut"), get("out_weight"), float(config["out_bias"]), get("model_bias"),
                get("base"), float(config["alpha"]),
                get("model_scale") if config["format"] == TWO_TOWER_FORMAT else None)  # fmt: skip
    check_head(head)
    return head


def check_head(head: Head) -> None:
    """Shapes agree with each other; a ValueError names the first array that does not."""
    k = len(head.models)
    expected: Mapping[str, tuple[Any, tuple[int, ...]]] = {
        "model_side": (head.model_side, (k, head.layers[0].width)),
        "model_bias": (head.model_bias, (k,)),
        "base": (head.base, (k,)),
        "out_weight": (head.out_weight, (head.layers[-1].width,)),
    }
    for name, (array, shape) in expected.items():
        if array.shape != shape:
            raise ValueError(f"head array {name} has shape {array.shape}, expected {shape}")
    width = sum(p.weight.shape[0] for p in head.projections) if head.projections else head.input_dim
    if head.model_scale is not None and head.model_scale.shape != (k, width):
        raise ValueError(f"head array model_scale has shape {head.model_scale.shape}, expected {(k, width)}")
    for i, layer in enumerate(head.layers):
        if layer.weight.shape[1] != width:
            raise ValueError(f"head layer {i} takes {layer.weight.shape[1]} inputs, the previous stage gives {width}")
        width = layer.width
