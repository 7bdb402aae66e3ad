"""What dense_network and dn_embedding share: prompt inputs (embedding + scaled features), fit with resume,
batched scoring, and save / load as safetensors + JSON.

Subclasses build the network (`_new_network`), describe it (`_network_config`, `_network_from_config`) and
make room for models first seen when resuming (`_grow`).

With a prompt-agnostic base (`run.base`, from the spec's `base_model`), the network learns a residual:
score(p, m) = base(m) + alpha * network(p, m), trained with the base as a fixed offset; the epoch is chosen on one
half of the selection battles and `alpha` in [0, 1] fitted on the other afterwards (router_core.base_model).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch
from torch import Tensor, nn

from router_core.base_model import BaseScores, fit_alpha, selection_halves
from router_core.data.types import A_WINS, B_WINS, Battles
from router_core.features import PromptFeatureScaler, prompt_feature_matrix
from router_core.scorer import RunConfig, TrainHooks
from router_neural import distributed
from router_neural.embeddings import TextEncoder
from router_neural.state_io import load_state, save_state
from router_neural.training import LoopState, PairData, default_device, pair_outputs, seed_everything, train_pairs

STATE = "state"


def unique_prompts(*battle_sets: Battles) -> list[str]:
    """Distinct prompt texts of the battles, in first-seen order (a missing prompt counts as "")."""
    return list(dict.fromkeys(p or "" for battles in battle_sets for p in battles.prompts))


def pair_data(battles: Battles, row_of: dict[str, int], index: dict[str, int]) -> PairData:
    """Index arrays of `battles`; battles with a model missing from `index` are left out."""
    lookup = np.array([index.get(m, -1) for m in battles.models], dtype=np.int64)
    a = lookup[battles.model_a] if len(battles) else np.zeros(0, dtype=np.int64)
    b = lookup[battles.model_b] if len(battles) else np.zeros(0, dtype=np.int64)
    rows = np.array([row_of[p or ""] for p in battles.prompts], dtype=np.int64)
    data = PairData(rows, a, b, battles.winner.astype(np.int64))
    return data.select((a >= 0) & (b >= 0))


class PromptScorer:
    """Base of the prompt-aware scorers (see the module docstring)."""

    spec_type: ClassVar[type]
    spec: Any

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.history_: list[dict[str, float]] = []
        self._encoder: TextEncoder | None = None
        self.base_: BaseScores | None = None
        self.alpha_ = 1.0

    # -- hooks -------------------------------------------------------------------------------------------------
    def _new_network(self, prompt_dim: int, feature_dim: int, models: Sequence[str], train: Battles,
                     selection: Battles, run: RunConfig, hooks: TrainHooks) -> nn.Module:  # fmt: skip
        raise NotImplementedError

    def _grow(self, new_models: Sequence[str], train: Battles, hooks: TrainHooks) -> None:
        raise NotImplementedError

    def _network_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def _network_from_config(self, config: dict[str, Any]) -> nn.Module:
        raise NotImplementedError

    def _prompt_table(self, prompts: Sequence[str], device: torch.device, write_cache: bool = False,
                      progress: bool = False) -> tuple[Any, int, int]:  # fmt: skip
        """What `_forward` reads for the prompts (by row), the prompt vector's width and the feature count.

        By default the rows of `prompt_inputs` as one tensor; transformer_embedding returns token ids instead.
        """
        inputs, feature_dim = self.prompt_inputs(prompts, write_cache=write_cache, progress=progress)
        return torch.as_tensor(inputs, device=device), inputs.shape[1] - feature_dim, feature_dim

    def _forward(self, table: Any, rows: Tensor, models: Tensor) -> Tensor:
        """Scores (n,) of prompt rows (n,) of `table` paired with model indices (n,)."""
        return self.network_(table[rows], models)

    def _lr_scale(self) -> dict[str, float]:
        """Learning-rate multipliers by submodule name of the network (see `build_optimizer`)."""
        return {}

    def _network_weights(self) -> dict[str, Tensor]:
        """The network's tensors that `save` writes (by default its whole state dict)."""
        return self.network_.state_dict()

    def _load_network_weights(self, network: nn.Module, weights: dict[str, Tensor]) -> None:
        """Put `_network_weights`' tensors into a freshly built network."""
        network.load_state_dict(weights)

    def _save_extra(self, directory: Path) -> None:
        """Additional state files (dn_embedding: its LLM-embedding stage)."""

    def _load_extra(self, directory: Path) -> None:
        """Read what `_save_extra` wrote (`self.spec` is set)."""

    # -- fitted state ------------------------------------------------------------------------------------------
    @property
    def known_models(self) -> tuple[str, ...]:
        """Models seen in training."""
        return tuple(getattr(self, "models_", ()))

    def _is_fitted(self) -> bool:
        return getattr(self, "network_", None) is not None

    def report(self) -> dict[str, Any]:
        """The epoch kept and, with a base, where the base came from and the fitted alpha."""
        out: dict[str, Any] = {"best_epoch": self.loop_.best_epoch}
        if self.base_ is not None:
            out |= {"base_model": self.base_.source, "alpha": self.alpha_}
        return out

    def encoder(self) -> TextEncoder:
        """The prompt encoder (loaded on first use)."""
        if self._encoder is None:
            self._encoder = TextEncoder(self.spec.embedding_model_name)
        return self._encoder

    def prompt_inputs(self, prompts: Sequence[str], write_cache: bool = False,
                      progress: bool = False) -> tuple[np.ndarray, int]:  # fmt: skip
        """Network inputs of prompts, shape (n, embedding dim [+ 44 scaled features]), float32, and the feature count."""
        embedded = self.encoder().encode(prompts, write_cache=write_cache, progress=progress)
        if not self.spec.use_prompt_features:
            return embedded, 0
        features = self.scaler_.transform(prompt_feature_matrix(prompts))
        return np.concatenate([embedded, features], axis=1), features.shape[1]

    # -- training ----------------------------------------------------------------------------------------------
    def preflight(self) -> None:
        """Load the prompt encoder now, so a model that cannot be loaded fails before any data is read."""
        self.encoder().dimension()

    def fit(self, train: Battles, selection: Battles, run: RunConfig, hooks: TrainHooks) -> Self:
        """Train on `train`, keep the epoch with the best `selection` accuracy; resume when `run.resume`."""
        resume = run.resume and self._is_fitted()
        seed_everything(run.seed)
        old = list(self.models_) if resume else []
        models = old + [m for m in train.models if m not in set(old)]
        prompts = unique_prompts(train, selection)
        row_of = {p: i for i, p in enumerate(prompts)}
        if not resume:
            self.history_, self.loop_ = [], LoopState()
            self.base_, self.alpha_ = run.base, 1.0
            train_prompts = unique_prompts(train)
            self.scaler_ = PromptFeatureScaler().fit(prompt_feature_matrix(train_prompts))
        device = default_device()
        with distributed.main_process_first():  # under torchrun rank 0 fills the embedding cache, the others read it
            main = distributed.is_main_process()
            table, prompt_dim, feature_dim = self._prompt_table(prompts, device, write_cache=main, progress=hooks.progress)
        if not resume:
            self.network_ = self._new_network(prompt_dim, feature_dim, models, train, selection, run, hooks).to(device)
        elif len(models) > len(old):
            hooks.log(f"resuming with {len(models) - len(old)} models not seen before; optimizer state reset")
            self._grow(models[len(old) :], train, hooks)
            self.network_.to(device)
            self.loop_.optimizer = self.loop_.scheduler = None
        self.models_ = tuple(models)
        index = {m: i for i, m in enumerate(models)}
        checkpoint = hooks.checkpoint
        offset = None
        if self.base_ is not None:
            offset = torch.as_tensor(self.base_.for_models(models), dtype=torch.float32, device=device)
        choosing = fitting_alpha = selection
        if self.base_ is not None:  # the epoch is chosen on one half, alpha fitted on the other
            choosing, fitting_alpha = selection_halves(selection, run.seed)
        selection_pairs = pair_data(choosing, row_of, index)

        def residual(rows: Tensor, ids: Tensor) -> Tensor:
            return self._forward(table, rows, ids)

        self.loop_ = train_pairs(
            self.network_, residual, pair_data(train, row_of, index), selection_pairs, self.spec, run, hooks,
            n_models=len(models), previous=self.loop_ if resume else None,
            on_checkpoint=(lambda epoch: checkpoint(self, epoch)) if checkpoint else None, desc=self.spec.model_type,
            lr_scale=self._lr_scale(), offset=offset,
            residual_penalty=self.spec.residual_penalty if offset is not None else 0.0,
        )  # fmt: skip
        self.history_ = self.loop_.history
        if self.base_ is not None:
            self.alpha_ = self._fit_alpha(residual, pair_data(fitting_alpha, row_of, index), models, device, hooks)
        return self

    def _fit_alpha(self, residual: Any, selection: PairData, models: Sequence[str], device: torch.device,
                   hooks: TrainHooks) -> float:  # fmt: skip
        """alpha in [0, 1] minimising the log-loss of base + alpha * residual on the decisive selection battles."""
        assert self.base_ is not None
        decisive = selection.select(selection.winner <= B_WINS)
        if len(decisive) == 0:
            hooks.log("no decisive selection battles to fit alpha on; alpha = 1 (data.selection_split is 0 or too small)")
            return 1.0
        res_a, res_b = pair_outputs(self.network_, residual, decisive, device)
        base = self.base_.for_models(models)
        alpha = fit_alpha(base[decisive.model_a] - base[decisive.model_b], res_a - res_b, decisive.winner == A_WINS)
        hooks.log(f"alpha = {alpha:.3f} on {len(decisive)} decisive selection battles, the half that did not choose "
                  f"the epoch (base: {self.base_.source}; 0 means the prompt adds nothing over the base)")  # fmt: skip
        return alpha

    # -- inference ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def score(self, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """Scores (n_prompts, n_models), float64; NaN for models never seen in training."""
        out = np.full((len(prompts), len(models)), np.nan)
        index = {m: i for i, m in enumerate(self.models_)}
        columns = [j for j, m in enumerate(models) if m in index]
        if not prompts or not columns:
            return out
        self.network_.eval()
        device = next(self.network_.parameters()).device
        ids = torch.as_tensor([index[models[j]] for j in columns], device=device)
        table = self._prompt_table(list(prompts), device)[0]
        for start in range(0, len(prompts), max(batch_size, 1)):
            rows = torch.arange(start, min(start + max(batch_size, 1), len(prompts)), device=device)
            scores = self._forward(table, rows.repeat_interleave(len(ids)), ids.repeat(len(rows)))
            out[start : start + len(rows), columns] = scores.view(len(rows), len(ids)).double().cpu().numpy()
        if self.base_ is not None:
            base = self.base_.for_models([models[j] for j in columns])
            out[:, columns] = base[None, :] + self.alpha_ * out[:, columns]
        return out

    # -- persistence -------------------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write state.safetensors + state.json (network, scaler, optimizer for resuming, history)."""
        loop = self.loop_
        state = {
            "format": 2,
            "models": list(self.models_),
            "scaler": self.scaler_.to_json(),
            "network": {"config": self._network_config(), "weights": self._network_weights()},
            "loop": {"epochs_completed": loop.epochs_completed, "best_epoch": loop.best_epoch,
                     "optimizer": loop.optimizer, "scheduler": loop.scheduler},
            "history": self.history_,
            "residual": None if self.base_ is None else {"base": self.base_.to_json(), "alpha": self.alpha_},
        }  # fmt: skip
        save_state(directory, STATE, state)
        self._save_extra(directory)

    @classmethod
    def load(cls, directory: Path, spec: Any) -> Self:
        """Rebuild a fitted scorer from `save`'s files and its spec."""
        state = load_state(directory, STATE)
        scorer = cls(spec)
        scorer.models_ = tuple(state["models"])
        scorer.scaler_ = PromptFeatureScaler.from_json(state["scaler"])
        if (residual := state.get("residual")) is not None:
            scorer.base_, scorer.alpha_ = BaseScores.from_json(residual["base"]), float(residual["alpha"])
        scorer._load_extra(directory)
        network = scorer._network_from_config(state["network"]["config"])
        scorer._load_network_weights(network, state["network"]["weights"])
        scorer.network_ = network.to(default_device()).eval()
        loop = state["loop"]
        scorer.history_ = state["history"]
        scorer.loop_ = LoopState(loop["epochs_completed"], loop["best_epoch"], loop["optimizer"], loop["scheduler"],
                                 list(scorer.history_))  # fmt: skip
        return scorer
