"""Prompt embeddings and LLM embeddings for scorers outside router-neural, behind two small protocols.

router-neural implements both (sentence-transformers; the torch LLM-embedding stage). A scorer in another package
(gradient_boosting in router-classic) asks this module for them; the implementations are resolved by import path
on first use, like the model-type registry, so no package imports a sibling and a scorer whose inputs need neither
never loads torch. Another implementation (an exported ONNX encoder, say) only has to meet the protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from router_core.registry import import_object

if TYPE_CHECKING:
    from router_core.data.types import Battles
    from router_core.scorer import TrainHooks
    from router_core.specs import LlmEmbeddingSpec

IMPLEMENTATIONS: dict[str, str] = {
    "prompt_encoder": "router_neural.embeddings:TextEncoder",
    "llm_embedding_stage": "router_neural.llm_embedding:LlmEmbeddingStage",
    "load_llm_embedding": "router_neural.llm_embedding:load_stage_from",
}
"""What implements each interface, as "module:name" (imported on first use)."""


class PromptEncoder(Protocol):
    """Embeds texts with one fixed model."""

    name: str

    def encode(self, texts: Sequence[str], batch_size: int = 64, write_cache: bool = True,
               progress: bool = False) -> np.ndarray:  # fmt: skip
        """Embeddings, shape (len(texts), dimension()), float32."""
        ...

    def dimension(self) -> int:
        """Size of one embedding."""
        ...


class LlmEmbedding(Protocol):
    """One fixed vector per LLM, learned from the LLMs' (prompt, response) pairs."""

    models_: tuple[str, ...]

    def vectors_for(self, models: Sequence[str]) -> np.ndarray:
        """Vectors of `models`, shape (n, d), float32; a model it never saw gets the mean vector."""
        ...

    def extend(self, battles: Battles, new_models: Sequence[str], log: Callable[[str], None]) -> np.ndarray:
        """Add vectors for `new_models`, pooled from their responses in `battles`; returns them, shape (n_new, d)."""
        ...


def prompt_encoder(name: str) -> PromptEncoder:
    """The sentence encoder `name` (all-MiniLM-L6-v2 is packaged with router-neural; see router_neural.embeddings)."""
    return import_object(IMPLEMENTATIONS["prompt_encoder"], "the prompt_embedding input")(name)


def learn_llm_embedding(spec: LlmEmbeddingSpec, train: Battles, selection: Battles, models: Sequence[str],
                        epochs: int, seed: int, hooks: TrainHooks) -> LlmEmbedding:  # fmt: skip
    """Train an LLM-embedding stage on the responses of `train` (the epoch kept is chosen on `selection`)."""
    stage: Any = import_object(IMPLEMENTATIONS["llm_embedding_stage"], "the model_embedding input")(spec)
    return stage.fit(train, selection, models, epochs, seed, hooks)


def load_llm_embedding(directory: Path, ref: str) -> LlmEmbedding:
    """The LLM-embedding stage saved with the model `ref` (TYPE/NAME) in `directory` (resolved by the pipeline)."""
    return import_object(IMPLEMENTATIONS["load_llm_embedding"], "the model_embedding input")(directory, ref)
