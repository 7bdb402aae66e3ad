"""The epoch loop of per-(prompt, model) regression (dn_embedding_length_prediction): MSE on a target per row,
shuffled batches, best-epoch restore and resume, on the same pieces as the pairwise loop in `training.py`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from router_core.errors import DataError
from router_core.scorer import RunConfig, TrainHooks
from router_neural.optim import build_optimizer
from router_neural.training import EVAL_BATCH, LoopState, ScoreFn, _copy_state, _restore_optimizer, _restore_state


@dataclass
class RegressionData:
    """Rows to regress: the prompt's row in the input table, the model's index, the target."""

    rows: np.ndarray  # (n,) int64
    models: np.ndarray  # (n,) int64
    target: np.ndarray  # (n,) float32

    def __len__(self) -> int:
        return len(self.target)

    def select(self, mask: np.ndarray) -> RegressionData:
        """The rows where `mask` is True."""
        return RegressionData(self.rows[mask], self.models[mask], self.target[mask])

    def tensors(self, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """rows, models (int64) and target (float32) on `device`."""
        return (torch.as_tensor(self.rows, dtype=torch.long, device=device),
                torch.as_tensor(self.models, dtype=torch.long, device=device),
                torch.as_tensor(self.target, dtype=torch.float32, device=device))  # fmt: skip


@torch.no_grad()
def mean_squared_error(module: nn.Module, predict: ScoreFn, data: RegressionData, device: torch.device) -> float:
    """Mean squared error of `predict` over `data` in eval mode; NaN when empty."""
    if len(data) == 0:
        return float("nan")
    module.eval()
    rows, models, target = data.tensors(device)
    total = 0.0
    for start in range(0, len(data), EVAL_BATCH):
        part = slice(start, start + EVAL_BATCH)
        total += float(((predict(rows[part], models[part]) - target[part]) ** 2).sum())
    return total / len(data)


def train_regression(
    module: nn.Module,
    predict: ScoreFn,
    train: RegressionData,
    selection: RegressionData,
    spec: Any,
    run: RunConfig,
    hooks: TrainHooks,
    *,
    previous: LoopState | None = None,
    on_checkpoint: Callable[[int], None] | None = None,
    desc: str = "train",
) -> LoopState:
    """Train `module` for `run.epochs` epochs on the MSE of `predict(rows, models)` against `target`, and restore
    the epoch with the lowest `selection` MSE (train MSE without selection rows).

    `spec` supplies `optimizer` and `gradient_clip`. With `previous` (resume), optimizer and schedule continue from
    their saved state, epoch numbers continue, and the starting weights compete with every new epoch for "best".
    Records hold `train_loss` / `selection_loss` (MSE) and `selection_rmse` (its square root).
    """
    if len(train) == 0:
        raise DataError("no training rows to regress on")
    device = next(module.parameters()).device
    optimizer, scheduler = build_optimizer(spec.optimizer, module)
    state = previous or LoopState()
    _restore_optimizer(optimizer, scheduler, state, hooks)
    start, history = state.epochs_completed, list(state.history)
    rng = np.random.default_rng(run.seed + start)
    rows, models, target = train.tensors(device)
    use_val = len(selection) > 0
    best_loss = mean_squared_error(module, predict, selection, device) if start > 0 and use_val else float("inf")
    best_state, best_epoch = _copy_state(module), state.best_epoch
    n = len(train)
    for epoch in range(start + 1, start + run.epochs + 1):
        began = time.perf_counter()
        module.train()
        order = torch.as_tensor(rng.permutation(n), device=device)
        loss_sum = torch.zeros((), device=device)  # synced once per epoch
        for begin in hooks.bar(range(0, n, run.batch_size), desc=f"{desc} {epoch}/{start + run.epochs}"):
            idx = order[begin : begin + run.batch_size]
            errors = (predict(rows[idx], models[idx]) - target[idx]) ** 2
            optimizer.zero_grad(set_to_none=True)
            errors.mean().backward()
            if spec.gradient_clip is not None:
                nn.utils.clip_grad_norm_(module.parameters(), spec.gradient_clip)
            optimizer.step()
            loss_sum += errors.detach().sum()
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()
        record = {"epoch": epoch, "train_loss": float(loss_sum) / n, "lr": lr}
        record["selection_loss"] = mean_squared_error(module, predict, selection, device)
        record["selection_rmse"] = float(np.sqrt(record["selection_loss"]))
        key = record["selection_loss"] if use_val else record["train_loss"]
        if key < best_loss:
            best_loss, best_state, best_epoch = key, _copy_state(module), epoch
            record["best"] = 1.0
        record["seconds"] = time.perf_counter() - began
        history.append(record)
        if epoch % run.print_every == 0 or epoch == start + run.epochs:
            hooks.log(f"epoch {epoch}: train MSE {record['train_loss']:.4f}, selection MSE {record['selection_loss']:.4f}"
                      f" (best epoch {best_epoch}), lr {lr:.3g}")  # fmt: skip
        hooks.epoch_done(record, epoch)
        if on_checkpoint is not None and run.save_every and epoch % run.save_every == 0:
            on_checkpoint(epoch)
    _restore_state(module, best_state)
    module.eval()
    return LoopState(start + run.epochs, best_epoch, optimizer.state_dict(),
                     scheduler.state_dict() if scheduler is not None else None, history)
