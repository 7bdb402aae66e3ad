"""`build_optimizer(spec, module)`: the optimizer and per-epoch LR schedule an `OptimizerSpec` describes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from router_core.specs.optimizers import AdamSpec, AdamWSpec, MuonSpec
from router_neural.optim.muon import MuonAdamW, adamw_step, muon_step, newton_schulz

OptimizerSpecType = AdamSpec | AdamWSpec | MuonSpec


def muon_parameters(module: nn.Module) -> set[int]:
    """Ids of the parameters Muon updates: weight matrices of `nn.Linear` layers with more than one row and column.

    Embedding tables (rows are looked up, not mixed), vectors and single-output layers stay with AdamW, as Muon's
    authors recommend; the reference system also sent embedding tables to Muon.
    """
    return {id(m.weight) for m in module.modules() if isinstance(m, nn.Linear) and min(m.weight.shape) > 1}


def build_optimizer(
    spec: OptimizerSpecType, module: nn.Module, lr_scale: Mapping[str, float] | None = None
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    """Optimizer over `module`'s trainable parameters and, with `lr_decay_gamma`, an ExponentialLR stepped per epoch.

    `lr_scale` maps submodule names (e.g. "head") to learning-rate multipliers: their parameters get parameter
    groups of their own with the scaled rates (for Muon, both its Muon and its AdamW rate are scaled).
    """
    params = [p for p in module.parameters() if p.requires_grad]
    scale = _scales(module, lr_scale or {})
    optimizer: torch.optim.Optimizer
    if isinstance(spec, AdamSpec | AdamWSpec):
        kind = torch.optim.Adam if isinstance(spec, AdamSpec) else torch.optim.AdamW
        optimizer = kind(_by_scale(params, scale, {"lr": spec.learning_rate}), lr=spec.learning_rate,
                         betas=spec.betas, eps=spec.eps, weight_decay=spec.weight_decay)  # fmt: skip
    else:
        ids = muon_parameters(module)
        muon = {"use_muon": True, "lr": spec.learning_rate, "momentum": spec.momentum, "nesterov": spec.nesterov,
                "ns_steps": spec.ns_steps, "weight_decay": spec.muon_weight_decay}  # fmt: skip
        adamw = {"use_muon": False, "lr": spec.adamw_lr, "betas": spec.betas, "eps": spec.eps,
                 "weight_decay": spec.weight_decay}  # fmt: skip
        optimizer = MuonAdamW(_by_scale([p for p in params if id(p) in ids], scale, muon)
                              + _by_scale([p for p in params if id(p) not in ids], scale, adamw))  # fmt: skip
    scheduler = None
    if spec.lr_decay_gamma is not None:
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=spec.lr_decay_gamma)
    return optimizer, scheduler


def _scales(module: nn.Module, lr_scale: Mapping[str, float]) -> dict[int, float]:
    """Parameter id -> learning-rate multiplier of the submodule it belongs to (1 where none is named)."""
    scales: dict[int, float] = {}
    for name, factor in lr_scale.items():
        for param in module.get_submodule(name).parameters():
            scales[id(param)] = factor
    return scales


def _by_scale(params: list[nn.Parameter], scale: dict[int, float], group: dict[str, Any]) -> list[dict[str, Any]]:
    """Parameter groups of `params`, one per multiplier, each `group`'s settings with its lr scaled."""
    factors = sorted({scale.get(id(p), 1.0) for p in params})
    return [group | {"params": [p for p in params if scale.get(id(p), 1.0) == f], "lr": group["lr"] * f}
            for f in factors]  # fmt: skip


__all__ = ["MuonAdamW", "adamw_step", "build_optimizer", "muon_parameters", "muon_step", "newton_schulz"]
