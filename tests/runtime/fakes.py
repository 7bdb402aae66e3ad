"""A fast, deterministic prompt-aware scorer and length model for the server tests (the server only needs `score` /
`predict_lengths`, `known_models` and a length model's `tokenizer`)."""

import hashlib
import threading
from collections.abc import Sequence

import numpy as np


def planted_score(prompt: str, model: str) -> float:
    """A fixed pseudo-random score in [-1, 1) for every (prompt, model)."""
    digest = hashlib.sha256(f"{prompt}\x00{model}".encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**63 - 1.0


class PlantedScorer:
    """Scores `planted_score` for known models, NaN for the others; records every call's shape.

    `gate`, when given, blocks each call until it is set (to pile up requests while the scorer is busy);
    `entered` is set as a call starts. A prompt equal to `fail_on` makes the whole call raise.
    """

    def __init__(self, known: Sequence[str] = ("alpha", "beta", "gamma"), fail_on: str | None = None) -> None:
        self._known = tuple(known)
        self.fail_on = fail_on
        self.calls: list[tuple[list[str], list[str], int]] = []
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    @property
    def known_models(self) -> tuple[str, ...]:
        return self._known

    def score(self, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
        self.calls.append((list(prompts), list(models), batch_size))
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(timeout=30), "test gate never opened"
        if self.fail_on is not None and self.fail_on in prompts:
            raise RuntimeError(f"cannot score {self.fail_on!r}")
        known = set(self._known)
        return np.array([[planted_score(p, m) if m in known else np.nan for m in models] for p in prompts],
                        dtype=np.float64).reshape(len(prompts), len(models))  # fmt: skip


class PlantedLengths:
    """A length model: `50 * (2 + planted_score)` tokens for known models, 100 for every other (the fallback);
    records every call's shape."""

    tokenizer = "planted-tokenizer"

    def __init__(self, known: Sequence[str] = ("alpha", "beta", "gamma")) -> None:
        self._known = tuple(known)
        self.calls: list[tuple[list[str], list[str], int]] = []

    @property
    def known_models(self) -> tuple[str, ...]:
        return self._known

    def predict_lengths(self, prompts: Sequence[str], models: Sequence[str], batch_size: int = 128) -> np.ndarray:
        self.calls.append((list(prompts), list(models), batch_size))
        known = set(self._known)
        return np.array([[50.0 * (2.0 + planted_score(p, m)) if m in known else 100.0 for m in models]
                         for p in prompts], dtype=np.float64).reshape(len(prompts), len(models))  # fmt: skip
