"""The torch reference backend: a saved model's own scorer, and reading its network into the numpy `Head` format.

Needs router-neural (the `export` or `triton` extra).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from router_core.errors import UserError
from router_runtime.exported import UNSEEN_ROW
from router_runtime.head import Head, Layer, Projection, check_head, leaky_relu

try:
    import torch
    from torch import nn

    from router_neural.networks import DenseNetwork, DnEmbeddingNetwork, LengthNetwork
    from router_neural.transformer_embedding.heads import TwoTowerHead
    from router_neural.transformer_embedding.model import TransformerEmbeddingNetwork
except ImportError as error:  # pragma: no cover - depends on the install
    raise UserError("the torch backend needs torch: install router-runtime[export]") from error


def _np(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().float().numpy().copy()


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def _np_or(tensor: torch.Tensor | None, width: int, fill: float) -> np.ndarray:
    """`tensor` as numpy, or `fill` repeated `width` times for a parameter a module was built without (Linear's bias
    with bias=False, LayerNorm's weight and bias with elementwise_affine=False: None, though torch annotates them as
    always present)."""
    return _np(tensor) if tensor is not None else np.full(width, fill, dtype=np.float32)


def _bias(linear: nn.Linear) -> np.ndarray:
    """The Linear's bias (zeros when it has none)."""
    return _np_or(linear.bias, linear.out_features, 0.0)


def head_of(scorer: Any) -> Head:
    """The `Head` of a fitted dense_network, dn_embedding or transformer_embedding scorer (its `network_`,
    `models_`, and with a base model its `base_` and `alpha_`); transformer_embedding's is in two-tower form."""
    network = scorer.network_
    if isinstance(network, DenseNetwork):
        head = _dense_head(network, tuple(scorer.models_))
    elif isinstance(network, DnEmbeddingNetwork):
        head = _dn_head(network, tuple(scorer.models_))
    elif isinstance(network, TransformerEmbeddingNetwork):
        head = two_tower_head(network.head, tuple(scorer.models_))
    else:
        raise UserError(f"cannot read the scoring head of a {type(network).__name__}: only DenseNetwork, "
                        "DnEmbeddingNetwork and TransformerEmbeddingNetwork export")  # fmt: skip
    base = scorer.base_  # router_core.base_model.BaseScores of a model over a base, else None
    if base is not None:
        head = head.with_base(base.for_models(head.models), scorer.alpha_)
    check_head(head)
    return head


def _model_bias(network: DenseNetwork | DnEmbeddingNetwork, k: int) -> np.ndarray:
    bias = network.model_bias.bias
    return _np(bias)[:k] if bias is not None else np.zeros(k, dtype=np.float32)


def _dense_head(network: DenseNetwork, models: tuple[str, ...]) -> Head:
    """DenseNetwork: MLP over [x, id embedding(m)]; its first Linear splits at x's width."""
    linears = _linears(network.mlp)
    first, hidden, out = linears[0], linears[1:-1], linears[-1]
    ids = _np(network.id_embedding.weight)[: len(models)]  # (k, id_dim)
    input_dim = first.in_features - ids.shape[1]
    weight = _np(first.weight)
    layers = (Layer(weight[:, :input_dim].copy(), _bias(first)),
              *(Layer(_np(layer.weight), _bias(layer)) for layer in hidden))  # fmt: skip
    return Head(models, input_dim, (), layers, ids @ weight[:, input_dim:].T, None, _np(out.weight)[0],
                float(_bias(out)[0]), _model_bias(network, len(models)))  # fmt: skip


def _projection(sequential: nn.Module, start: int) -> Projection:
    linear = _linears(sequential)[0]
    return Projection(start, start + linear.in_features, _np(linear.weight), _bias(linear))


def _block_layer(block: nn.Module) -> tuple[Layer, np.ndarray | None]:
    """A residual block (router_neural.networks: body = Linear, LayerNorm, ...; shortcut) as a Layer, with its
    shortcut as a full matrix (identity -> eye)."""
    body, shortcut_module = block.get_submodule("body"), getattr(block, "shortcut", None)
    linear, norm = body.get_submodule("0"), body.get_submodule("1")
    if not isinstance(linear, nn.Linear) or not isinstance(norm, nn.LayerNorm):
        raise UserError(f"cannot read the scoring head: a residual block is {type(linear).__name__} then "
                        f"{type(norm).__name__}, not Linear then LayerNorm")  # fmt: skip
    shortcut = None
    if isinstance(shortcut_module, nn.Linear):
        shortcut = _np(shortcut_module.weight)
    elif shortcut_module is not None:
        shortcut = np.eye(linear.out_features, dtype=np.float32)
    width = linear.out_features
    layer = Layer(_np(linear.weight), _bias(linear),
                  _np_or(norm.weight, width, 1.0), _np_or(norm.bias, width, 0.0), float(norm.eps), shortcut)
    return layer, shortcut


def _dn_head(network: DnEmbeddingNetwork, models: tuple[str, ...]) -> Head:
    """DnEmbeddingNetwork: projections of the prompt (and features), residual blocks over [u, proj(LLM vector)]."""
    vectors = _np(network.get_buffer("llm_vectors"))[: len(models)]
    return _projected_head(network, models, _llm_side(network, vectors), _model_bias(network, len(models)))


def _llm_side(network: DnEmbeddingNetwork | LengthNetwork | TwoTowerHead, vectors: np.ndarray) -> np.ndarray:
    """LeakyReLU(llm_proj(vectors)), shape (k, proj_dim), of LLM embeddings (k, d_llm)."""
    llm = _linears(network.llm_proj)[0]
    return leaky_relu(vectors @ _np(llm.weight).T + _bias(llm))


def _projected_head(network: DnEmbeddingNetwork | LengthNetwork, models: tuple[str, ...], model_inputs: np.ndarray,
                    model_bias: np.ndarray) -> Head:  # fmt: skip
    """The `Head` of a network whose first block reads [proj(prompt emb), proj(features), model inputs]: the
    prompt projections as its prompt stage, the model inputs (k, width) folded into the per-model side."""
    projections = [_projection(network.prompt_proj, 0)]
    if network.feature_proj is not None:
        projections.append(_projection(network.feature_proj, network.prompt_dim))
    u_dim = sum(p.weight.shape[0] for p in projections)
    blocks = [_block_layer(block) for block in network.blocks]
    first, first_shortcut = blocks[0]
    model_shortcut = model_inputs @ first_shortcut[:, u_dim:].T if first_shortcut is not None else None
    layer0 = Layer(first.weight[:, :u_dim].copy(), first.bias, first.norm_weight, first.norm_bias, first.norm_eps,
                   first_shortcut[:, :u_dim].copy() if first_shortcut is not None else None)  # fmt: skip
    out = network.head
    input_dim = network.prompt_dim + (projections[1].stop - projections[1].start if len(projections) > 1 else 0)
    return Head(models, input_dim, tuple(projections), (layer0, *(b for b, _ in blocks[1:])),
                model_inputs @ first.weight[:, u_dim:].T, model_shortcut, _np(out.weight)[0], float(_bias(out)[0]),
                model_bias)  # fmt: skip


def two_tower_head(tower: TwoTowerHead, models: tuple[str, ...]) -> Head:
    """TwoTowerHead: the prompt stage is its two projections (prompt vector, features), the model tower
    LeakyReLU(llm_proj(LLM embedding)) per model, the MLP's hidden Linears the layers (no norm, no shortcut)."""
    projections = (_projection(tower.prompt_proj, 0),)
    projections += (_projection(tower.feature_proj, projections[0].stop),)
    linears = _linears(tower.mlp)
    layers = tuple(Layer(_np(linear.weight), _bias(linear)) for linear in linears[:-1])
    out, k = linears[-1], len(models)
    scale = _llm_side(tower, _np(tower.get_buffer("llm_vectors"))[:k])
    return Head(models, projections[1].stop, projections, layers, np.zeros((k, layers[0].width), dtype=np.float32),
                None, _np(out.weight)[0], float(_bias(out)[0]), np.zeros(k, dtype=np.float32), model_scale=scale)  # fmt: skip


def length_head_of(predictor: Any) -> Head:
    """The `Head` of a fitted dn_embedding_length_prediction model: log length over its known models plus one last
    row, `UNSEEN_ROW`, with the network's unseen-model fallback (the mean LLM embedding, ID vector and offset);
    `base` holds the predictor's log shift (`log_shift_`)."""
    network = predictor.network_
    if not isinstance(network, LengthNetwork):
        raise UserError(f"cannot read the length head of a {type(network).__name__}: only LengthNetwork exports")
    k = len(predictor.models_)
    llm = network.get_buffer("llm_vectors")
    vectors = torch.cat([llm[:k], llm.mean(0, keepdim=True)])
    ids = torch.cat([network.id_embedding.weight[:k], network.id_embedding.weight.mean(0, keepdim=True)])
    offsets = torch.cat([network.offset[:k], network.offset.mean().reshape(1)])
    inputs = np.concatenate([_llm_side(network, _np(vectors)), _np(ids)], axis=1)
    head = _projected_head(network, (*predictor.models_, UNSEEN_ROW), inputs, _np(offsets))
    head = head.with_base(np.full(k + 1, float(getattr(predictor, "log_shift_", 0.0))), 1.0)
    check_head(head)
    return head


def load_torch_scorer(ref: str) -> Any:
    """The saved model `ref` (TYPE/NAME) from the model store, as its own (torch) scorer."""
    from router_core.pipeline import load_scorer
    from router_core.store import ModelStore

    return load_scorer(ModelStore().resolve(ref))
