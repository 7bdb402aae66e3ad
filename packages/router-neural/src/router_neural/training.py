"""The epoch loop shared by every neural scorer: seeded sampling, pairwise loss, best-epoch restore, resume.

A scorer hands over its network, a function scoring (prompt row, model) index pairs, and the battles as index
arrays; the loop does the rest (progress bar, print_every, checkpoints, W&B).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from router_core.data.types import B_WINS
from router_core.sampling import sampling_probabilities
from router_core.scorer import RunConfig, TrainHooks
from router_core.specs._pairwise import PairwiseLossFields
from router_neural import distributed
from router_neural.losses import pair_correct, pair_losses
from router_neural.optim import build_optimizer

ScoreFn = Callable[[Tensor, Tensor], Tensor]
"""(prompt rows (n,), model indices (n,)) -> scores (n,)."""
EVAL_BATCH = 8192


@dataclass
class PairData:
    """Battles as index arrays: the prompt's row in the input table, both models' indices, the winner code."""

    rows: np.ndarray  # (n,) int64
    model_a: np.ndarray  # (n,) int64
    model_b: np.ndarray  # (n,) int64
    winner: np.ndarray  # (n,) int64

    def __len__(self) -> int:
        return len(self.winner)

    def select(self, mask: np.ndarray) -> PairData:
        """The battles where `mask` is True."""
        return PairData(self.rows[mask], self.model_a[mask], self.model_b[mask], self.winner[mask])


@dataclass
class LoopState:
    """What a later `fit` needs to continue training: epochs done, optimizer and scheduler state."""

    epochs_completed: int = 0
    best_epoch: int | None = None
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    history: list[dict[str, float]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_device() -> torch.device:
    """CUDA when available, else CPU; under torchrun, this rank's GPU (`router_neural.distributed.device`)."""
    return distributed.device()


def _scores(score_fn: ScoreFn, data: dict[str, Tensor], idx: Tensor | slice,
            offset: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """Scores of side A and side B of the battles `idx`, and score_fn's raw output for both sides (2n,).

    With `offset` (a per-model base, (n_models,)) the scores are offset[model] + score_fn's output (the residual).
    """
    rows = data["rows"][idx]
    ids = torch.cat([data["model_a"][idx], data["model_b"][idx]])
    residual = score_fn(torch.cat([rows, rows]), ids)
    both = residual if offset is None else residual + offset[ids]
    return both[: len(rows)], both[len(rows) :], residual


@torch.no_grad()
def pair_outputs(module: nn.Module, score_fn: ScoreFn, data: PairData, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """score_fn's output for side A and side B of every battle, (n,) float64 each, in eval mode."""
    module.eval()
    tensors = _to_device(data, device)
    out_a, out_b = [], []
    for start in range(0, len(data), EVAL_BATCH):
        a, b, _ = _scores(score_fn, tensors, slice(start, start + EVAL_BATCH))
        out_a.append(a.double().cpu().numpy())
        out_b.append(b.double().cpu().numpy())
    return (np.concatenate(out_a), np.concatenate(out_b)) if out_a else (np.zeros(0), np.zeros(0))


@torch.no_grad()
def evaluate(module: nn.Module, score_fn: ScoreFn, data: PairData, spec: PairwiseLossFields,
             device: torch.device, offset: Tensor | None = None) -> dict[str, float]:  # fmt: skip
    """Mean loss over all battles and accuracy over decisive ones, in eval mode."""
    if len(data) == 0:
        return {"loss": float("nan"), "accuracy": float("nan")}
    return _rates(_evaluation_sums(module, score_fn, data, spec, device, offset), len(data))


def _rates(sums: tuple[float, float, float], n: int) -> dict[str, float]:
    loss_sum, correct, decisive = sums
    return {"loss": loss_sum / n, "accuracy": correct / decisive if decisive else float("nan")}


@torch.no_grad()
def _evaluation_sums(module: nn.Module, score_fn: ScoreFn, data: PairData, spec: PairwiseLossFields,
                     device: torch.device, offset: Tensor | None) -> tuple[float, float, float]:  # fmt: skip
    """Loss sum, correct and decisive counts over `data`, in eval mode."""
    module.eval()
    tensors = _to_device(data, device)
    loss_sum, correct, decisive = 0.0, 0.0, int((data.winner <= B_WINS).sum())
    for start in range(0, len(data), EVAL_BATCH):
        part = slice(start, start + EVAL_BATCH)
        score_a, score_b, _ = _scores(score_fn, tensors, part, offset)
        loss_sum += float(_losses(score_a, score_b, tensors["winner"][part], spec).sum())
        correct += float(pair_correct(score_a, score_b, tensors["winner"][part]).sum())
    return loss_sum, correct, decisive


def _evaluate_all_ranks(module: nn.Module, score_fn: ScoreFn, data: PairData, spec: PairwiseLossFields,
                        device: torch.device, offset: Tensor | None) -> dict[str, float]:  # fmt: skip
    """`evaluate`; under torchrun each rank scores its shard of `data` and the sums are added over ranks, so every
    rank gets the same numbers (and so makes the same best-epoch choice)."""
    if not distributed.is_distributed() or len(data) == 0:
        return evaluate(module, score_fn, data, spec, device, offset)
    mine = np.zeros(len(data), dtype=bool)
    mine[distributed.shard(len(data), distributed.rank(), distributed.world_size())] = True
    sums = torch.tensor(_evaluation_sums(module, score_fn, data.select(mine), spec, device, offset),
                        dtype=torch.float64, device=device)  # fmt: skip
    loss_sum, correct, decisive = distributed.all_reduce_sum(sums).tolist()
    return _rates((loss_sum, correct, decisive), len(data))


def _losses(score_a: Tensor, score_b: Tensor, winner: Tensor, spec: PairwiseLossFields) -> Tensor:
    return pair_losses(score_a, score_b, winner, kind=spec.ranking_loss_type, margin=spec.ranking_margin,
                       coeff=spec.non_ranking_loss_coeff, eps=spec.tie_both_bad_epsilon)  # fmt: skip


def _to_device(data: PairData, device: torch.device) -> dict[str, Tensor]:
    return {name: torch.as_tensor(getattr(data, name), dtype=torch.long, device=device)
            for name in ("rows", "model_a", "model_b", "winner")}  # fmt: skip


def _better(candidate: tuple[float, ...], best: tuple[float, ...] | None) -> bool:
    """Keys compare lexicographically, higher is better; NaN never wins (the first key always does)."""
    if best is None:
        return True
    if any(np.isnan(value) for value in candidate):
        return False
    return candidate > best


@dataclass(frozen=True)
class EpochTask:
    """What one training loop hands `run_epochs`: the parts in which pairwise and regression training differ.

    Attributes:
        n: rows (battles, or (prompt, model) rows) per epoch.
        order: the epoch's row order, drawn from the loop's generator (seeded by `run.seed` and the start epoch).
        batch: global batch indices (on the device) -> (the loss to minimise, a 1-d tensor of sums to add up over
            the epoch, first the loss sum and last the number of rows this process saw).
        epoch_record: the epoch's summed stats -> its train fields (`train_loss`, ...).
        selection: -> the selection fields of the record (`selection_loss`, ...), after the epoch.
        key: the record -> the key the best epoch maximises (`_better`).
        line: (record, best epoch) -> the line logged every `print_every` epochs.
    """

    n: int
    order: Callable[[np.random.Generator], np.ndarray]
    batch: Callable[[Tensor], tuple[Tensor, Tensor]]
    epoch_record: Callable[[Tensor], dict[str, float]]
    selection: Callable[[], dict[str, float]]
    key: Callable[[dict[str, float]], tuple[float, ...]]
    line: Callable[[dict[str, float], int | None], str]
    postfix: Callable[[Tensor], dict[str, str]] | None = None


def run_epochs(module: nn.Module, task: EpochTask, spec: Any, run: RunConfig, hooks: TrainHooks, *,
               previous: LoopState | None, initial_key: tuple[float, ...] | None = None,
               lr_scale: Mapping[str, float] | None = None, on_checkpoint: Callable[[int], None] | None = None,
               desc: str = "train") -> LoopState:  # fmt: skip
    """The epoch loop every neural model trains with: `run.epochs` epochs of shuffled batches (optimizer step with
    `spec.gradient_clip`, LR schedule, progress bar), one record per epoch, checkpoints every `run.save_every`, and
    at the end the weights of the epoch with the best `task.key` restored.

    `spec` supplies `optimizer` and `gradient_clip`; `lr_scale` multiplies the learning rates of named submodules
    (`build_optimizer`). With `previous` (resume), optimizer and schedule continue from their saved state, epoch
    numbers continue, and the starting weights (whose key is `initial_key`) compete with every new epoch.
    """
    device = next(module.parameters()).device
    optimizer, scheduler = build_optimizer(spec.optimizer, module, lr_scale)
    state = previous or LoopState()
    _restore_optimizer(optimizer, scheduler, state, hooks)
    start = state.epochs_completed
    history = list(state.history)
    rng = np.random.default_rng(run.seed + start)
    best_key, best_state, best_epoch = initial_key, _copy_state(module), state.best_epoch
    clip = spec.gradient_clip
    for epoch in range(start + 1, start + run.epochs + 1):
        began = time.perf_counter()
        module.train()
        order = torch.as_tensor(task.order(rng), device=device)
        sums: Tensor | None = None  # synced once per epoch
        bar = hooks.bar(range(0, task.n, run.batch_size), desc=f"{desc} {epoch}/{start + run.epochs}")
        for step, begin in enumerate(bar):
            loss, stats = task.batch(order[begin : begin + run.batch_size])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(module.parameters(), clip)
            optimizer.step()
            sums = stats.detach() if sums is None else sums + stats.detach()
            if task.postfix is not None and step % 20 == 0 and not getattr(bar, "disable", True):
                bar.set_postfix(task.postfix(sums))
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()
        assert sums is not None, "an epoch has at least one batch"
        record = {"epoch": epoch, **task.epoch_record(sums), "lr": lr, **task.selection()}
        key = task.key(record)
        if _better(key, best_key):
            best_key, best_state, best_epoch = key, _copy_state(module), epoch
            record["best"] = 1.0
        record["seconds"] = time.perf_counter() - began
        history.append(record)
        if epoch % run.print_every == 0 or epoch == start + run.epochs:
            hooks.log(task.line(record, best_epoch))
        hooks.epoch_done(record, epoch)
        if on_checkpoint is not None and run.save_every and epoch % run.save_every == 0:
            on_checkpoint(epoch)
    _restore_state(module, best_state)
    module.eval()
    return LoopState(start + run.epochs, best_epoch, optimizer.state_dict(),
                     scheduler.state_dict() if scheduler is not None else None, history)


def train_pairs(
    module: nn.Module,
    score_fn: ScoreFn,
    train: PairData,
    selection: PairData,
    spec: Any,
    run: RunConfig,
    hooks: TrainHooks,
    *,
    n_models: int,
    previous: LoopState | None = None,
    on_checkpoint: Callable[[int], None] | None = None,
    desc: str = "train",
    lr_scale: Mapping[str, float] | None = None,
    offset: Tensor | None = None,
    residual_penalty: float = 0.0,
) -> LoopState:
    """Train `module` on the pairwise loss (`run_epochs`) and restore the epoch with the best accuracy on
    `selection` (ties broken by lower loss; without selection battles, train accuracy decides).

    `spec` is the scorer's spec: its loss fields (`PairwiseLossFields`), `optimizer` and `gradient_clip`. With
    `offset` ((n_models,), a prompt-agnostic base), a battle's scores are offset[model] + score_fn(...), and
    `residual_penalty` * mean(score_fn(...)^2) is added to the loss: the network learns a residual over the base,
    pulled toward zero. Only trainable parameters and buffers are kept for the best epoch, so a frozen (possibly
    quantised) base is never copied. Ties and both_bad are left out of training when `non_ranking_loss_coeff` is 0
    (they would add nothing). Under torchrun each rank trains on its shard of every global batch.
    """
    device = next(module.parameters()).device
    if spec.non_ranking_loss_coeff == 0:
        train = train.select(train.winner <= B_WINS)
    if len(train) == 0:
        from router_core.errors import DataError

        raise DataError("no training battles the loss can use (all ties / both_bad with non_ranking_loss_coeff 0)")
    probs = sampling_probabilities(train.model_a, train.model_b, n_models) if spec.balance_model_samples else None
    data = _to_device(train, device)
    use_val = int((selection.winner <= B_WINS).sum()) > 0
    initial_key = None
    if previous is not None and previous.epochs_completed > 0 and use_val:  # resuming: the loaded weights compete
        initial = _evaluate_all_ranks(module, score_fn, selection, spec, device, offset)
        initial_key = (initial["accuracy"], -initial["loss"])
    n = len(train)
    step_fn = distributed.data_parallel(module, score_fn)  # through DDP under torchrun, else score_fn itself

    def order(rng: np.random.Generator) -> np.ndarray:
        return rng.choice(n, size=n, p=probs) if probs is not None else rng.permutation(n)

    def batch(indices: Tensor) -> tuple[Tensor, Tensor]:
        idx = distributed.local_batch(indices)  # this rank's shard of the global batch (all of it in one process)
        score_a, score_b, residual = _scores(step_fn, data, idx, offset)
        winner = data["winner"][idx]
        losses = _losses(score_a, score_b, winner, spec)
        mean = distributed.batch_mean  # the mean over the global batch (under DDP, once gradients are averaged)
        loss = mean(losses, len(indices))
        if residual_penalty:
            loss = loss + residual_penalty * mean(residual.square(), 2 * len(indices))
        with torch.no_grad():
            stats = torch.stack([losses.sum(), pair_correct(score_a, score_b, winner).sum(),
                                 (winner <= B_WINS).sum().to(losses.dtype),
                                 torch.tensor(float(len(idx)), dtype=losses.dtype, device=losses.device)])  # fmt: skip
        return loss, stats

    def epoch_record(sums: Tensor) -> dict[str, float]:
        loss_sum, correct, decisive, _ = distributed.all_reduce_sum(sums).tolist()
        return {"train_loss": loss_sum / n, "train_accuracy": correct / max(decisive, 1)}

    def selection_fields() -> dict[str, float]:
        val = _evaluate_all_ranks(module, score_fn, selection, spec, device, offset)
        return {"selection_loss": val["loss"], "selection_accuracy": val["accuracy"]}

    def key(record: dict[str, float]) -> tuple[float, ...]:
        which = "selection" if use_val else "train"
        return record[f"{which}_accuracy"], -record[f"{which}_loss"]

    def postfix(sums: Tensor) -> dict[str, str]:
        return {"loss": f"{float(sums[0]) / max(float(sums[3]), 1):.4f}",
                "acc": f"{float(sums[1]) / max(float(sums[2]), 1):.4f}"}  # fmt: skip

    task = EpochTask(n, order, batch, epoch_record, selection_fields, key, _line, postfix)
    return run_epochs(module, task, spec, run, hooks, previous=previous, initial_key=initial_key, lr_scale=lr_scale,
                      on_checkpoint=on_checkpoint, desc=desc)  # fmt: skip


def _restore_optimizer(optimizer: torch.optim.Optimizer, scheduler: Any, state: LoopState, hooks: TrainHooks) -> None:
    if state.optimizer is None:
        return
    try:
        optimizer.load_state_dict(state.optimizer)
        if scheduler is not None and state.scheduler is not None:
            scheduler.load_state_dict(state.scheduler)
    except (ValueError, KeyError, RuntimeError) as error:
        hooks.log(f"note: optimizer state not restored ({error}); continuing with a fresh optimizer")


def _copy_state(module: nn.Module) -> dict[str, Tensor]:
    """What training changes: the trainable parameters and the buffers."""
    tensors = dict(module.named_buffers()) | {n: p for n, p in module.named_parameters() if p.requires_grad}
    return {k: v.detach().clone() for k, v in tensors.items()}


def _restore_state(module: nn.Module, state: dict[str, Tensor]) -> None:
    current = dict(module.named_buffers()) | dict(module.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            current[name].copy_(value)


def _line(record: dict[str, float], best_epoch: int | None) -> str:
    return (f"epoch {record['epoch']}: train loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f}, "
            f"selection loss {record['selection_loss']:.4f} acc {record['selection_accuracy']:.4f} "
            f"(best epoch {best_epoch}), lr {record['lr']:.3g}")  # fmt: skip
