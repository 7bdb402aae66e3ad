"""The torch reference backend: a saved model's own scorer, and reading its network into the numpy `Head` format.

Needs router-neural (the `export` or `triton` extra).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from router_core.errors import UserError
from router_runtime.head import Head, Layer, Projection, check_head

try:
    import torch
    from torch import nn
except ImportError as error:  # pragma: no cover - depends on the install
    raise UserError("the torch backend needs torch: install router-runtime[export]") from error


def _np(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().float().numpy().copy()


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def head_of(scorer: Any) -> Head:
    """The `Head` of a fitted dense_network or dn_embedding scorer (its `network_`, `models_`, and with a base model
    its `base_` and `alpha_`)."""
    network = scorer.network_
    name = type(network).__name__
    if name == "DenseNetwork":
        head = _dense_head(network, tuple(scorer.models_))
    elif name == "DnEmbeddingNetwork":
        head = _dn_head(network, tuple(scorer.models_))
    else:
        raise UserError(f"cannot read the scoring head of a {name}: only DenseNetwork and DnEmbeddingNetwork export")
    base = scorer.base_  # router_core.base_model.BaseScores of a model over a base, else None
    if base is not None:
        head = head.with_base(base.for_models(head.models), scorer.alpha_)
    check_head(head)
    return head


def _model_bias(network: nn.Module, k: int) -> np.ndarray:
    bias = network.model_bias.bias
    return _np(bias)[:k] if bias is not None else np.zeros(k, dtype=np.float32)


def _dense_head(network: nn.Module, models: tuple[str, ...]) -> Head:
    """DenseNetwork: MLP over [x, id embedding(m)]; its first Linear splits at x's width."""
    linears = _linears(network.mlp)
    first, hidden, out = linears[0], linears[1:-1], linears[-1]
    ids = _np(network.id_embedding.weight)[: len(models)]  # (k, id_dim)
    input_dim = first.in_features - ids.shape[1]
    weight = _np(first.weight)
    layers = (Layer(weight[:, :input_dim].copy(), _np(first.bias)),
              *(Layer(_np(layer.weight), _np(layer.bias)) for layer in hidden))  # fmt: skip
    return Head(models, input_dim, (), layers, ids @ weight[:, input_dim:].T, None, _np(out.weight)[0],
                float(out.bias.item()), _model_bias(network, len(models)))  # fmt: skip


def _projection(sequential: nn.Module, start: int) -> Projection:
    linear = _linears(sequential)[0]
    return Projection(start, start + linear.in_features, _np(linear.weight), _np(linear.bias))


def _block_layer(block: nn.Module) -> tuple[Layer, np.ndarray | None]:
    """A residual block as a Layer, with its shortcut as a full matrix (identity -> eye)."""
    linear, norm = block.body[0], block.body[1]
    shortcut = None
    if isinstance(block.shortcut, nn.Linear):
        shortcut = _np(block.shortcut.weight)
    elif block.shortcut is not None:
        shortcut = np.eye(linear.out_features, dtype=np.float32)
    return Layer(_np(linear.weight), _np(linear.bias), _np(norm.weight), _np(norm.bias), float(norm.eps), shortcut), shortcut


def _dn_head(network: nn.Module, models: tuple[str, ...]) -> Head:
    """DnEmbeddingNetwork: projections of the prompt (and features), residual blocks over [u, proj(LLM vector)]."""
    projections = [_projection(network.prompt_proj, 0)]
    if network.feature_proj is not None:
        projections.append(_projection(network.feature_proj, network.prompt_dim))
    u_dim = sum(p.weight.shape[0] for p in projections)
    llm = _linears(network.llm_proj)[0]
    vectors = _np(network.llm_vectors)[: len(models)] @ _np(llm.weight).T + _np(llm.bias)
    model_vectors = np.where(vectors > 0, vectors, 0.1 * vectors).astype(np.float32)  # (k, proj_dim)
    blocks = [_block_layer(block) for block in network.blocks]
    first, first_shortcut = blocks[0]
    model_shortcut = model_vectors @ first_shortcut[:, u_dim:].T if first_shortcut is not None else None
    layer0 = Layer(first.weight[:, :u_dim].copy(), first.bias, first.norm_weight, first.norm_bias, first.norm_eps,
                   first_shortcut[:, :u_dim].copy() if first_shortcut is not None else None)  # fmt: skip
    out = network.head
    input_dim = network.prompt_dim + (projections[1].stop - projections[1].start if len(projections) > 1 else 0)
    return Head(models, input_dim, tuple(projections), (layer0, *(b for b, _ in blocks[1:])),
                model_vectors @ first.weight[:, u_dim:].T, model_shortcut, _np(out.weight)[0], float(out.bias.item()),
                _model_bias(network, len(models)))  # fmt: skip


def load_torch_scorer(ref: str) -> Any:
    """The saved model `ref` (TYPE/NAME) from the model store, as its own (torch) scorer."""
    from router_core.pipeline import load_scorer
    from router_core.store import ModelStore

    return load_scorer(ModelStore().resolve(ref))
