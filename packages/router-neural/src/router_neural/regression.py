"""Per-(prompt, model) regression (dn_embedding_length_prediction): MSE on a target per row, trained by the epoch
loop of `training.py` (`run_epochs`) with its shuffling, best-epoch restore and resume."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from router_core.errors import DataError
from router_core.scorer import RunConfig, TrainHooks
from router_neural.training import EVAL_BATCH, EpochTask, LoopState, ScoreFn, run_epochs


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
    """Train `module` (`run_epochs`) on the MSE of `predict(rows, models)` against `target`, and restore the epoch
    with the lowest `selection` MSE (train MSE without selection rows).

    `spec` supplies `optimizer` and `gradient_clip`; `previous` resumes as in `run_epochs`. Records hold
    `train_loss` / `selection_loss` (MSE) and `selection_rmse` (its square root).
    """
    if len(train) == 0:
        raise DataError("no training rows to regress on")
    device = next(module.parameters()).device
    rows, models, target = train.tensors(device)
    use_val = len(selection) > 0
    initial_key = None
    if previous is not None and previous.epochs_completed > 0 and use_val:  # resuming: the loaded weights compete
        initial_key = (-mean_squared_error(module, predict, selection, device),)
    n = len(train)

    def batch(idx: Tensor) -> tuple[Tensor, Tensor]:
        errors = (predict(rows[idx], models[idx]) - target[idx]) ** 2
        stats = torch.stack([errors.detach().sum(), torch.tensor(float(len(idx)), device=errors.device)])
        return errors.mean(), stats

    def selection_fields() -> dict[str, float]:
        mse = mean_squared_error(module, predict, selection, device)
        return {"selection_loss": mse, "selection_rmse": float(np.sqrt(mse))}

    def key(record: dict[str, float]) -> tuple[float, ...]:
        return (-record["selection_loss" if use_val else "train_loss"],)

    def line(record: dict[str, float], best_epoch: int | None) -> str:
        return (f"epoch {record['epoch']}: train MSE {record['train_loss']:.4f}, selection MSE "
                f"{record['selection_loss']:.4f} (best epoch {best_epoch}), lr {record['lr']:.3g}")  # fmt: skip

    task = EpochTask(n, lambda rng: rng.permutation(n), batch, lambda sums: {"train_loss": float(sums[0]) / n},
                     selection_fields, key, line)  # fmt: skip
    return run_epochs(module, task, spec, run, hooks, previous=previous, initial_key=initial_key,
                      on_checkpoint=on_checkpoint, desc=desc)  # fmt: skip
