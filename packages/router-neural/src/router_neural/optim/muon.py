"""Muon (momentum orthogonalised by a Newton-Schulz iteration) for weight matrices, AdamW for every other parameter.

One `torch.optim.Optimizer` holds both kinds of parameter groups (flag `use_muon`), so a single LR scheduler and a
single state dict cover everything. The step functions are pure tensor code.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
"""Quintic Newton-Schulz coefficients chosen for a steep slope at zero (Keller Jordan's Muon)."""


def newton_schulz(matrix: Tensor, steps: int, eps: float = 1e-7) -> Tensor:
    """Approximate orthogonalisation U V^T of a 2-D `matrix` (shape (rows, cols)) by a quintic iteration.

    The iteration runs on the wide orientation (rows <= cols) of a copy normalised to unit Frobenius norm, in
    float32, and returns a tensor of the input's shape. Singular values land roughly in [0.7, 1.2], not exactly 1.
    """
    a, b, c = NS_COEFFICIENTS
    x = matrix.to(torch.float32)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x.T if tall else x).to(matrix.dtype)


@torch.no_grad()
def muon_step(param: Tensor, grad: Tensor, buf: Tensor, *, lr: float, momentum: float, nesterov: bool, ns_steps: int,
              weight_decay: float) -> None:
    """One in-place Muon update of a 2-D `param` (shape (out, in)); `buf` is its momentum buffer (same shape)."""
    buf.mul_(momentum).add_(grad)
    direction = grad.add(buf, alpha=momentum) if nesterov else buf
    update = newton_schulz(direction, ns_steps)
    if weight_decay:
        param.mul_(1 - lr * weight_decay)
    param.add_(update, alpha=-lr * math.sqrt(max(1.0, param.size(0) / param.size(1))))


@torch.no_grad()
def adamw_step(param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, step: int, *, lr: float,
               betas: tuple[float, float], eps: float, weight_decay: float) -> None:
    """One in-place AdamW update (decoupled weight decay, bias-corrected moments); `step` counts from 1."""
    beta1, beta2 = betas
    param.mul_(1 - lr * weight_decay)
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = (exp_avg_sq / (1 - beta2**step)).sqrt_().add_(eps)
    param.addcdiv_(exp_avg, denom, value=-lr / (1 - beta1**step))


class MuonAdamW(torch.optim.Optimizer):
    """Groups with `use_muon=True` (2-D params only) take Muon steps, the others AdamW steps."""

    def __init__(self, groups: Iterable[dict[str, Any]]) -> None:
        groups = list(groups)
        for group in groups:
            if group["use_muon"] and any(p.ndim != 2 for p in group["params"]):
                raise ValueError("Muon groups take 2-D parameters only")
        super().__init__(groups, {})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # noqa: D102 - torch's contract
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if group["use_muon"]:
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    muon_step(p, p.grad, state["momentum_buffer"], lr=group["lr"], momentum=group["momentum"],
                              nesterov=group["nesterov"], ns_steps=group["ns_steps"],
                              weight_decay=group["weight_decay"])  # fmt: skip
                    continue
                if "step" not in state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(p), torch.zeros_like(p)
                state["step"] += 1
                adamw_step(p, p.grad, state["exp_avg"], state["exp_avg_sq"], int(state["step"].item()), lr=group["lr"],
                           betas=tuple(group["betas"]), eps=group["eps"], weight_decay=group["weight_decay"])  # fmt: skip
        return loss
