"""`TransformerEmbeddingScorer`: the prompt's tokens go through a fine-tuned transformer, the model side is the LLM
embedding of dn_embedding's first stage, a two-tower head scores the pair (see `heads.py`, `finetuning.py`).

The saved state holds only what was trained (adapters, biases, the top layers, or all encoder weights for `full`)
plus the head, the base model's name and the sha256 of its weights; loading rebuilds the base from its name and
refuses a base whose weights differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Self

import torch
from torch import Tensor, nn

from router_core.data.types import Battles
from router_core.errors import DataError, UserError
from router_core.features import prompt_feature_matrix
from router_core.scorer import RunConfig, TrainHooks
from router_core.specs import TransformerEmbeddingSpec
from router_neural.llm_embedding import LlmEmbeddingStage, shared_stage
from router_neural.prompt_scorer import PromptScorer
from router_neural.training import default_device
from router_neural.transformer_embedding.encoder import (
    Pooling,
    PromptEncoder,
    base_directory,
    load_tokenizer,
    read_pooling,
    weights_sha256,
)
from router_neural.transformer_embedding.finetuning import finetunable_backbone, trainable_count
from router_neural.transformer_embedding.heads import TwoTowerHead

ENCODE_BATCH = 64
"""Prompts per encoder call when no gradient is needed (scoring, evaluation)."""


@dataclass
class TokenTable:
    """The prompts of a fit or score call, by row: token ids right-padded to the longest, lengths, scaled features."""

    ids: Tensor  # (n, L) int32
    lengths: Tensor  # (n,) int64
    features: Tensor  # (n, n_features) float32


class TransformerEmbeddingNetwork(nn.Module):
    """The fine-tuned prompt encoder and the scoring head (one module, so one optimizer and one state)."""

    def __init__(self, encoder: PromptEncoder, head: TwoTowerHead) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head


class TransformerEmbeddingScorer(PromptScorer):
    """Prompt-aware scorer with a fine-tuned transformer prompt encoder; unknown models score NaN."""

    spec_type: ClassVar[type[TransformerEmbeddingSpec]] = TransformerEmbeddingSpec
    spec: TransformerEmbeddingSpec
    network_: TransformerEmbeddingNetwork

    def __init__(self, spec: TransformerEmbeddingSpec) -> None:
        super().__init__(spec)
        self._base_dir: Path | None = None
        self._tokenizer: Any = None

    # -- the base model ----------------------------------------------------------------------------------------
    def base_dir(self) -> Path:
        """Local directory of the base transformer (resolved on first use)."""
        if self._base_dir is None:
            self._base_dir = base_directory(self.spec.transformer_model_name)
        return self._base_dir

    def tokenizer(self) -> Any:
        """The base's tokenizer (loaded on first use)."""
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.base_dir())
        return self._tokenizer

    def preflight(self) -> None:
        """Find the base model and load its tokenizer, so a model that cannot be had fails before data is read."""
        self.tokenizer()

    def _build_encoder(self, pooling: Pooling, note: Any) -> PromptEncoder:
        backbone = finetunable_backbone(self.base_dir(), self.spec.finetuning_spec, default_device(), note)
        return PromptEncoder(backbone, pooling)

    # -- PromptScorer hooks ------------------------------------------------------------------------------------
    def fit(self, train: Battles, selection: Battles, run: RunConfig, hooks: TrainHooks) -> Self:
        """Train as `PromptScorer.fit` does, seeded with the spec's `seed`."""
        return super().fit(train, selection, replace(run, seed=self.spec.seed), hooks)

    def _prompt_table(self, prompts: Sequence[str], device: torch.device, write_cache: bool = False,
                      progress: bool = False) -> tuple[TokenTable, int, int]:  # fmt: skip
        del write_cache, progress  # token ids are cheap; nothing is cached
        encoded = self.tokenizer()(list(prompts), truncation=True, max_length=self.spec.max_length,
                                   padding=False)["input_ids"]  # fmt: skip
        lengths = torch.as_tensor([len(ids) for ids in encoded], dtype=torch.long)
        ids = torch.full((len(encoded), int(lengths.max()) if len(encoded) else 1), self.tokenizer().pad_token_id or 0,
                         dtype=torch.int32)  # fmt: skip
        for row, tokens in enumerate(encoded):
            ids[row, : len(tokens)] = torch.as_tensor(tokens, dtype=torch.int32)
        features = torch.as_tensor(self.scaler_.transform(prompt_feature_matrix(prompts)), dtype=torch.float32)
        table = TokenTable(ids.to(device), lengths.to(device), features.to(device))
        return table, self._hidden_size(), features.shape[1]

    def _hidden_size(self) -> int:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(str(self.base_dir()), local_files_only=True)
        return int(getattr(config, "hidden_size", None) or getattr(config, "d_model", None) or config.n_embd)

    def _forward(self, table: TokenTable, rows: Tensor, models: Tensor) -> Tensor:
        """Both sides of a pair share one encoder pass: each distinct prompt row is encoded once."""
        unique, inverse = torch.unique(rows, return_inverse=True)
        vectors = self._encode(table, unique)
        return self.network_.head(vectors[inverse], table.features[rows], models)

    def _encode(self, table: TokenTable, rows: Tensor) -> Tensor:
        if torch.is_grad_enabled():
            return self._encode_batch(table, rows)
        order = torch.argsort(table.lengths[rows])  # similar lengths together: less padding
        out = torch.empty(len(rows), self.dims_["prompt_dim"], device=rows.device)
        for start in range(0, len(rows), ENCODE_BATCH):
            part = order[start : start + ENCODE_BATCH]
            out[part] = self._encode_batch(table, rows[part])
        return out

    def _encode_batch(self, table: TokenTable, rows: Tensor) -> Tensor:
        lengths = table.lengths[rows]
        width = max(int(lengths.max()), 1)
        ids = table.ids[rows, :width].long()
        mask = (torch.arange(width, device=ids.device) < lengths[:, None]).long()
        return self.network_.encoder(ids, mask)

    def _new_network(self, prompt_dim: int, feature_dim: int, models: Sequence[str], train: Battles,
                     selection: Battles, run: RunConfig, hooks: TrainHooks) -> nn.Module:  # fmt: skip
        stage, vectors = shared_stage(self.spec, models, train, selection, run, hooks)
        if stage is not None:  # a rank other than 0 of a torchrun run holds no learned stage (it does not save)
            self.stage_ = stage
        torch.manual_seed(run.seed)  # the head's initialisation must not depend on the stage's draws
        self.dims_ = {"prompt_dim": prompt_dim, "feature_dim": feature_dim}
        self.pretrained_ = {"name": self.spec.transformer_model_name, "sha256": weights_sha256(self.base_dir())}
        encoder = self._build_encoder(read_pooling(self.base_dir()), hooks.log)
        total = sum(p.numel() for p in encoder.parameters())
        hooks.log(f"{self.spec.finetuning_spec.method}: {trainable_count(encoder):,} of {total:,} encoder parameters "
                  f"train ({encoder.pooling.mode} pooling)")  # fmt: skip
        return TransformerEmbeddingNetwork(encoder, self._head(vectors))

    def _head(self, vectors: Tensor) -> TwoTowerHead:
        spec = self.spec
        return TwoTowerHead(self.dims_["prompt_dim"], self.dims_["feature_dim"], vectors, spec.proj_dim,
                            list(spec.hidden_dims), spec.dropout, zero_start=spec.base_model is not None)  # fmt: skip

    def _grow(self, new_models: Sequence[str], train: Battles, hooks: TrainHooks) -> None:
        self.stage_.extend(train, new_models, hooks.log)
        self.network_.head.grow(torch.as_tensor(self.stage_.vectors_for(new_models)))

    def _lr_scale(self) -> dict[str, float]:
        multiplier = self.spec.scoring_head_lr_multiplier
        return {} if multiplier == 1.0 else {"head": multiplier}

    # -- persistence -------------------------------------------------------------------------------------------
    def _network_config(self) -> dict[str, Any]:
        n_models, d_llm = self.network_.head.llm_vectors.shape
        pooling = self.network_.encoder.pooling
        return self.dims_ | {"n_models": int(n_models), "llm_dim": int(d_llm), "base": dict(self.pretrained_),
                             "pooling": {"mode": pooling.mode, "normalize": pooling.normalize}}  # fmt: skip

    def _network_weights(self) -> dict[str, Tensor]:
        """The trained encoder tensors (adapters, biases, top layers or all), the head and its LLM embeddings."""
        return _trained_names(self.network_)

    def _network_from_config(self, config: dict[str, Any]) -> nn.Module:
        base = config["base"]
        if base["name"] != self.spec.transformer_model_name:
            raise DataError(f"the saved state was fine-tuned from {base['name']!r} but the spec names "
                            f"{self.spec.transformer_model_name!r}")  # fmt: skip
        found = weights_sha256(self.base_dir())
        if found != base["sha256"]:
            raise UserError(f"base model mismatch: this model was fine-tuned from {base['name']!r} with weights of "
                            f"sha256 {base['sha256']}, but {self.base_dir()} now holds weights of sha256 {found}; "
                            "load it with the base it was trained on")  # fmt: skip
        self.pretrained_ = dict(base)
        self.dims_ = {"prompt_dim": int(config["prompt_dim"]), "feature_dim": int(config["feature_dim"])}
        pooling = Pooling(str(config["pooling"]["mode"]), bool(config["pooling"]["normalize"]))
        head = self._head(torch.zeros(int(config["n_models"]), int(config["llm_dim"])))
        return TransformerEmbeddingNetwork(self._build_encoder(pooling, lambda _: None), head)

    def _load_network_weights(self, network: nn.Module, weights: dict[str, Tensor]) -> None:
        expected = set(_trained_names(network))
        if set(weights) != expected:
            missing, extra = sorted(expected - set(weights)), sorted(set(weights) - expected)
            raise DataError(f"saved weights do not fit the {self.spec.finetuning_spec.method} network: missing "
                            f"{missing[:3]}, unexpected {extra[:3]}")  # fmt: skip
        network.load_state_dict(weights, strict=False)  # the frozen base comes from its own files

    def _save_extra(self, directory: Path) -> None:
        self.stage_.save(directory, with_spec=self.spec.embedding_spec is None)

    def _load_extra(self, directory: Path) -> None:
        self.stage_ = LlmEmbeddingStage.load(directory, self.spec.embedding_spec)


def _trained_names(network: nn.Module) -> dict[str, Tensor]:
    """What a saved state holds: trainable parameters and the head's buffers (never the frozen base)."""
    trained = {name: p for name, p in network.named_parameters() if p.requires_grad}
    return trained | {f"head.{name}": b for name, b in network.get_submodule("head").named_buffers()}
