"""`build_optimizer(spec, module)`: the optimizer and per-epoch LR schedule an `OptimizerSpec` describes."""

from __future__ import annotations

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
    spec: OptimizerSpecType, module: nn.Module
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]:
    """Optimizer over `module`'s trainable parameters and, with `lr_decay_gamma`, an ExponentialLR stepped per epoch."""
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer: torch.optim.Optimizer
    if isinstance(spec, AdamSpec):
        optimizer = torch.optim.Adam(params, lr=spec.learning_rate, betas=spec.betas, eps=spec.eps,
                                     weight_decay=spec.weight_decay)  # fmt: skip
    elif isinstance(spec, AdamWSpec):
        optimizer = torch.optim.AdamW(params, lr=spec.learning_rate, betas=spec.betas, eps=spec.eps,
                                      weight_decay=spec.weight_decay)  # fmt: skip
    else:
        ids = muon_parameters(module)
        groups = [
            {"params": [p for p in params if id(p) in ids], "use_muon": True, "lr": spec.learning_rate,
             "momentum": spec.momentum, "nesterov": spec.nesterov, "ns_steps": spec.ns_steps,
             "weight_decay": spec.muon_weight_decay},
            {"params": [p for p in params if id(p) not in ids], "use_muon": False, "lr": spec.adamw_lr,
             "betas": spec.betas, "eps": spec.eps, "weight_decay": spec.weight_decay},
        ]  # fmt: skip
        optimizer = MuonAdamW(g for g in groups if g["params"])
    scheduler = None
    if spec.lr_decay_gamma is not None:
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=spec.lr_decay_gamma)
    return optimizer, scheduler


__all__ = ["MuonAdamW", "adamw_step", "build_optimizer", "muon_parameters", "muon_step", "newton_schulz"]
