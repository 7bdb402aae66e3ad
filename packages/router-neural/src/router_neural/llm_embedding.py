"""The LLM-embedding stage of dn_embedding and transformer_embedding: one fixed vector per LLM, learned from its (prompt, response) pairs.

A pair encoder maps (prompt embedding, response embedding, 32 scaled response features) to a code; attention
pooling (one learned query per head) turns a set of an LLM's codes into a set embedding. A supervised contrastive
loss pulls set embeddings of the same LLM together. Who won is ignored, so ties and both_bad battles are used too.
An LLM's final vector pools all of its training pairs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from router_core.data.types import Battles
from router_core.errors import DataError, UserError
from router_core.features import response_features
from router_core.scorer import RunConfig, TrainHooks
from router_core.specs import AttentionEmbeddingSpec
from router_core.specs.llm_embedding import LlmEmbeddingSource
from router_core.store import SPEC_FILE
from router_neural import distributed
from router_neural.embeddings import TextEncoder
from router_neural.losses import supervised_contrastive_loss
from router_neural.optim import build_optimizer
from router_neural.state_io import load_state, save_state
from router_neural.training import default_device

STAGE = "llm_embedding"
N_RESPONSE_FEATURES = 32
MAX_POOLED_PAIRS = 4096


def _layer(width_in: int, width_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width_in, width_out), nn.LayerNorm(width_out), nn.ReLU(), nn.Dropout(dropout))


class AttentionEmbeddingNet(nn.Module):
    """Pair encoder + multi-head attention pooling over a set of pairs."""

    def __init__(self, text_dim: int, spec: AttentionEmbeddingSpec) -> None:
        super().__init__()
        self.prompt_proj = _layer(text_dim, spec.h_emb, spec.dropout)
        self.response_proj = _layer(text_dim, spec.h_emb, spec.dropout)
        self.feature_proj = _layer(N_RESPONSE_FEATURES, spec.h_scalar, spec.dropout)
        width, layers = 4 * spec.h_emb + spec.h_scalar, []
        for i in range(spec.pair_mlp_layers):
            out = spec.h_pair if i == spec.pair_mlp_layers - 1 else (width + spec.h_pair) // 2
            layers.append(_layer(width, out, spec.dropout))
            width = out
        self.pair_mlp = nn.Sequential(*layers)
        self.heads, self.head_dim = spec.num_attention_heads, spec.h_pair // spec.num_attention_heads
        self.queries = nn.Parameter(torch.randn(self.heads, self.head_dim) / math.sqrt(self.head_dim))
        self.keys, self.values = nn.Linear(spec.h_pair, spec.h_pair), nn.Linear(spec.h_pair, spec.h_pair)
        self.out = nn.Sequential(nn.Linear(spec.h_pair, spec.d_out), nn.LayerNorm(spec.d_out))

    def codes(self, prompt: Tensor, response: Tensor, features: Tensor) -> Tensor:
        """Pair codes (n, h_pair) of prompt (n, text_dim), response (n, text_dim), features (n, 32)."""
        p, r = self.prompt_proj(prompt), self.response_proj(response)
        return self.pair_mlp(torch.cat([p, r, r - p, r * p, self.feature_proj(features)], dim=1))

    def pool(self, codes: Tensor) -> Tensor:
        """Set embeddings (n_sets, d_out) of codes (n_sets, set_size, h_pair)."""
        n_sets, size, _ = codes.shape
        keys = self.keys(codes).view(n_sets, size, self.heads, self.head_dim)
        values = self.values(codes).view(n_sets, size, self.heads, self.head_dim)
        attention = torch.einsum("sphd,hd->shp", keys, self.queries).div(math.sqrt(self.head_dim)).softmax(dim=2)
        pooled = torch.einsum("shp,sphd->shd", attention, values).reshape(n_sets, -1)
        return self.out(pooled)


def nearest_model_accuracy(queries: np.ndarray, labels: np.ndarray, vectors: np.ndarray) -> float:
    """Share of set embeddings `queries` (n, d) whose nearest model vector (rows of `vectors`, NaN rows for models
    without one) is their own model `labels` (n,). Nearest by cosine similarity: the contrastive loss compares
    L2-normalised embeddings, so a vector's length carries nothing it was trained for (by Euclidean distance a model
    with a short vector came out nearest to most sets, below chance)."""
    known = ~np.isnan(vectors).any(1)
    unit = np.zeros_like(vectors, dtype=np.float64)
    unit[known] = vectors[known] / np.maximum(np.linalg.norm(vectors[known], axis=1, keepdims=True), 1e-12)
    similarity = (queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)) @ unit.T
    similarity[:, ~known] = -np.inf
    return float(np.mean(similarity.argmax(1) == labels))


class PairTable:
    """Every (prompt, response, model) sample of some battles: embeddings, raw response features, model ids."""

    def __init__(self, battles: Battles, encoder: TextEncoder, models: Sequence[str], progress: bool = False) -> None:
        index = {m: i for i, m in enumerate(models)}
        prompts, responses, ids = [], [], []
        for record in battles.records:
            for model, response in ((record.model_a, record.response_a), (record.model_b, record.response_b)):
                if response and response.strip() and record.prompt and model in index:
                    prompts.append(record.prompt)
                    responses.append(response)
                    ids.append(index[model])
        self.models = np.asarray(ids, dtype=np.int64)
        if not ids:
            self.prompt = self.response = np.zeros((0, 0), dtype=np.float32)
            self.raw_features = np.zeros((0, N_RESPONSE_FEATURES))
            return
        self.prompt = encoder.encode(prompts, progress=progress)
        self.response = encoder.encode(responses, progress=progress)
        text = np.stack([response_features(p, r) for p, r in zip(prompts, responses, strict=True)])
        interaction = np.stack([
            (self.prompt * self.response).sum(1) / np.maximum(
                np.linalg.norm(self.prompt, axis=1) * np.linalg.norm(self.response, axis=1), 1e-12),
            np.linalg.norm(self.prompt - self.response, axis=1),
            (self.prompt * self.response).sum(1),
        ], axis=1)  # fmt: skip
        self.raw_features = np.concatenate([interaction, text], axis=1)

    def __len__(self) -> int:
        return len(self.models)

    def by_model(self, n_models: int) -> list[np.ndarray]:
        """Sample indices of every model."""
        return [np.flatnonzero(self.models == m) for m in range(n_models)]


class LlmEmbeddingStage:
    """Learns (`fit`) or holds (`load`) the per-LLM vectors of a dn_embedding model."""

    def __init__(self, spec: AttentionEmbeddingSpec) -> None:
        self.spec = spec
        self.history_: list[dict[str, float]] = []

    def _tensors(self, table: PairTable, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        features = (table.raw_features - self.feature_mean_) / self.feature_std_
        prompt, response, extra = (torch.as_tensor(a, dtype=torch.float32, device=device)
                                   for a in (table.prompt, table.response, features))  # fmt: skip
        return prompt, response, extra

    def fit(self, train: Battles, selection: Battles, models: Sequence[str], epochs: int, seed: int,
            hooks: TrainHooks) -> LlmEmbeddingStage:  # fmt: skip
        """Train on the responses in `train`; the epoch kept is the one with the best nearest-vector accuracy on
        `selection`'s responses (on `train`'s when it has none)."""
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        encoder, device = TextEncoder(self.spec.encoder_model_name), default_device()
        log = hooks.log
        log(f"LLM-embedding stage: embedding responses with {self.spec.encoder_model_name}")
        table = PairTable(train, encoder, models, hooks.progress)
        val_table = PairTable(selection, encoder, models, hooks.progress)
        if len(table) == 0:
            raise DataError("dn_embedding's embedding stage needs response texts and the training battles have none;"
                            " use data with responses or load_embedding_model_from")  # fmt: skip
        self.models_ = tuple(models)
        self.feature_mean_ = table.raw_features.mean(0)
        self.feature_std_ = np.where(table.raw_features.std(0) > 1e-12, table.raw_features.std(0), 1.0)
        self.text_dim_ = table.prompt.shape[1]
        self.network_ = AttentionEmbeddingNet(self.text_dim_, self.spec).to(device)
        data, groups = self._tensors(table, device), table.by_model(len(models))
        present = [m for m, g in enumerate(groups) if len(g)]
        optimizer, scheduler = build_optimizer(self.spec.optimizer, self.network_)
        steps = max(1, len(present) // self.spec.models_per_batch) * 10
        best: tuple[float, float, dict[str, Tensor]] | None = None
        for epoch in hooks.bar(range(1, epochs + 1), desc="LLM-embedding stage"):
            self.network_.train()
            losses = [self._step(data, groups, present, rng, optimizer) for _ in range(steps)]
            if scheduler is not None:
                scheduler.step()
            self.vectors_ = self._pool_all(data, groups)
            accuracy = self._nearest_accuracy(val_table if len(val_table) else table, rng, device)
            record = {"epoch": epoch, "loss": float(np.mean(losses)), "accuracy": accuracy}
            self.history_.append(record)
            if best is None or (accuracy, -record["loss"]) > best[:2]:
                best = (accuracy, -record["loss"], {k: v.clone() for k, v in self.network_.state_dict().items()})
            log(f"LLM-embedding epoch {epoch}: contrastive loss {record['loss']:.4f}, "
                f"{'selection' if len(val_table) else 'train'} nearest-LLM accuracy {accuracy:.4f}")  # fmt: skip
        assert best is not None
        self.network_.load_state_dict(best[2])
        self.vectors_ = self._pool_all(data, groups)
        self._fill_missing(groups, log)
        return self

    def _step(self, data: tuple[Tensor, Tensor, Tensor], groups: list[np.ndarray], present: list[int],
              rng: np.random.Generator, optimizer: torch.optim.Optimizer) -> float:  # fmt: skip
        spec = self.spec
        chosen = rng.choice(present, size=min(spec.models_per_batch, len(present)), replace=False)
        picks, labels = [], []
        for m in chosen:
            for _ in range(spec.embeddings_per_model):
                group = groups[m]
                picks.append(rng.choice(group, size=spec.pairs_per_model, replace=len(group) < spec.pairs_per_model))
                labels.append(m)
        idx = torch.as_tensor(np.concatenate(picks), device=data[0].device)
        codes = self.network_.codes(data[0][idx], data[1][idx], data[2][idx])
        sets = self.network_.pool(codes.view(len(picks), spec.pairs_per_model, -1))
        loss = supervised_contrastive_loss(sets, torch.as_tensor(labels, device=sets.device), spec.temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.network_.parameters(), 1.0)
        optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def _pool_all(self, data: tuple[Tensor, Tensor, Tensor], groups: list[np.ndarray]) -> np.ndarray:
        """Vector of every model from (up to MAX_POOLED_PAIRS of) its pairs; NaN rows for models without pairs."""
        self.network_.eval()
        vectors = np.full((len(groups), self.spec.d_out), np.nan, dtype=np.float32)
        for m, group in enumerate(groups):
            if len(group):
                idx = torch.as_tensor(group[:MAX_POOLED_PAIRS], device=data[0].device)
                codes = self.network_.codes(data[0][idx], data[1][idx], data[2][idx])
                vectors[m] = self.network_.pool(codes[None]).squeeze(0).cpu().numpy()
        return vectors

    @torch.no_grad()
    def _nearest_accuracy(self, table: PairTable, rng: np.random.Generator, device: torch.device) -> float:
        """Share of set embeddings (of `table`'s pairs) whose nearest model vector is their own model."""
        data, groups = self._tensors(table, device), table.by_model(len(self.models_))
        queries, labels = [], []
        for m, group in enumerate(groups):
            if not len(group) or np.isnan(self.vectors_[m]).any():
                continue
            for _ in range(self.spec.embeddings_per_model):
                pick = rng.choice(group, size=min(len(group), self.spec.pairs_per_model), replace=False)
                idx = torch.as_tensor(pick, device=device)
                codes = self.network_.codes(data[0][idx], data[1][idx], data[2][idx])
                queries.append(self.network_.pool(codes[None]).squeeze(0).cpu().numpy())
                labels.append(m)
        if not queries:
            return float("nan")
        return nearest_model_accuracy(np.stack(queries), np.array(labels), self.vectors_)

    def _fill_missing(self, groups: list[np.ndarray], log: Callable[[str], None]) -> None:
        missing = [self.models_[m] for m, g in enumerate(groups) if not len(g)]
        if missing:
            log(f"no responses for {len(missing)} models ({', '.join(missing[:5])}); they get the mean LLM embedding")
            self.vectors_[np.isnan(self.vectors_).any(1)] = np.nanmean(self.vectors_, axis=0)

    def extend(self, battles: Battles, new_models: Sequence[str], log: Callable[[str], None]) -> np.ndarray:
        """Vectors (n_new, d_out) of models first seen when resuming, pooled from their pairs in `battles`."""
        table = PairTable(battles, TextEncoder(self.spec.encoder_model_name), new_models)
        groups = table.by_model(len(new_models))
        fresh = self._pool_all(self._tensors(table, next(self.network_.parameters()).device), groups)
        mean = np.nanmean(self.vectors_, axis=0)
        fresh[np.isnan(fresh).any(1)] = mean
        self.models_ += tuple(new_models)
        self.vectors_ = np.concatenate([self.vectors_, fresh])
        if any(not len(g) for g in groups):
            log("some new models have no responses; they get the mean LLM embedding")
        return fresh

    def vectors_for(self, models: Sequence[str]) -> np.ndarray:
        """Vectors of `models` (n, d_out); models this stage never saw get the mean vector."""
        index = {m: i for i, m in enumerate(self.models_)}
        mean = self.vectors_.mean(0)
        return np.stack([self.vectors_[index[m]] if m in index else mean for m in models]).astype(np.float32)

    def save(self, directory: Path, with_spec: bool = False) -> None:
        """Write llm_embedding.safetensors + llm_embedding.json; the stage's spec only `with_spec` (a stage copied
        from another model, whose spec this model's spec does not hold)."""
        state: dict[str, Any] = {
            "models": list(self.models_), "text_dim": self.text_dim_,
            "vectors": torch.as_tensor(self.vectors_), "network": self.network_.state_dict(),
            "feature_mean": self.feature_mean_.tolist(), "feature_std": self.feature_std_.tolist(),
            "history": self.history_,
        }  # fmt: skip
        if with_spec:
            state["spec"] = self.spec.model_dump(mode="json")
        save_state(directory, STAGE, state)

    @classmethod
    def load(cls, directory: Path, spec: AttentionEmbeddingSpec | None = None) -> LlmEmbeddingStage:
        """Read what `save` wrote; `spec` is the stage's spec when the state does not carry its own."""
        state = load_state(directory, STAGE)
        if "spec" in state:
            spec = AttentionEmbeddingSpec.model_validate(state["spec"])
        if spec is None:
            raise DataError(f"{directory / (STAGE + '.json')}: the LLM-embedding stage has no spec (neither in the "
                            "file nor in the model's spec.json)")  # fmt: skip
        stage = cls(spec)
        stage.models_, stage.text_dim_ = tuple(state["models"]), int(state["text_dim"])
        stage.vectors_ = state["vectors"].numpy().astype(np.float32)
        stage.feature_mean_ = np.asarray(state["feature_mean"])
        stage.feature_std_ = np.asarray(state["feature_std"])
        stage.network_ = AttentionEmbeddingNet(stage.text_dim_, stage.spec)
        stage.network_.load_state_dict(state["network"])
        stage.network_.to(default_device()).eval()
        stage.history_ = state["history"]
        return stage


def load_stage_from(directory: Path, ref: str) -> LlmEmbeddingStage:
    """The LLM-embedding stage saved with the model `ref` (TYPE/NAME), whose directory the pipeline resolved."""
    if not (directory / f"{STAGE}.safetensors").is_file():
        raise UserError(f"saved model {ref} has no LLM embedding to load "
                        "(dn_embedding and transformer_embedding models carry one)")  # fmt: skip
    source_spec = json.loads((directory / SPEC_FILE).read_text())["model"]["spec"].get("embedding_spec")
    return LlmEmbeddingStage.load(directory, None if source_spec is None else AttentionEmbeddingSpec(**source_spec))


def stage_for(spec: LlmEmbeddingSource, models: Sequence[str], train: Battles, selection: Battles, run: RunConfig,
              hooks: TrainHooks) -> LlmEmbeddingStage:  # fmt: skip
    """The LLM embeddings a scorer's spec asks for: copied from `load_embedding_model_from` (models it lacks are
    pooled from their training responses with its encoder) or learned on `train` for `embedding_model_epochs`."""
    if spec.load_embedding_model_from is not None:
        source = spec.load_embedding_model_from
        stage = load_stage_from(run.reference("load_embedding_model_from"), source)
        unseen = [m for m in models if m not in set(stage.models_)]
        if unseen:
            hooks.log(f"{len(unseen)} models are not in {source}'s LLM embedding; "
                      "pooling their training responses with its encoder")  # fmt: skip
            stage.extend(train, unseen, hooks.log)
        return stage
    assert spec.embedding_spec is not None  # the spec validator guarantees one source
    return LlmEmbeddingStage(spec.embedding_spec).fit(train, selection, models, spec.embedding_model_epochs,
                                                      run.seed, hooks)  # fmt: skip


def shared_stage(spec: LlmEmbeddingSource, models: Sequence[str], train: Battles, selection: Battles, run: RunConfig,
                 hooks: TrainHooks) -> tuple[LlmEmbeddingStage | None, Tensor]:  # fmt: skip
    """`stage_for` once per training run, and its vectors for `models`, shape (len(models), d), on every rank.

    Under torchrun rank 0 goes first (it fills the embedding caches the others then read); a learned stage is
    trained by rank 0 alone and the other ranks receive its vectors and hold no stage (only rank 0 saves). A copied
    stage is loaded by every rank. Without torchrun this is `stage_for` and its vectors.
    """
    learned = spec.load_embedding_model_from is None
    stage = None
    vectors = None
    with distributed.main_process_first():
        if not learned or distributed.is_main_process():
            stage = stage_for(spec, models, train, selection, run, hooks)
            vectors = torch.as_tensor(stage.vectors_for(models))
    if learned:
        assert spec.embedding_spec is not None  # the spec validator guarantees one source
        empty = torch.zeros(len(models), spec.embedding_spec.d_out)
        vectors = distributed.broadcast_from_main(vectors if vectors is not None else empty)
    assert vectors is not None
    return stage, vectors
