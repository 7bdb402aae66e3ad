"""The exported sentence encoder: `tokenizers` + one ONNX graph (tokens -> pooled, normalised embedding).

Prompts are tokenised once, sorted by length and run in batches padded to their longest member, so short and
long prompts do not share padding. Needs the `onnx` extra (onnxruntime).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from router_core.errors import UserError

ENCODER_ONNX, TOKENIZER, ENCODER_JSON = "model.onnx", "tokenizer.json", "encoder.json"


def available_cores() -> int:
    """CPU cores this process may run on (the default intra-op thread count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def onnxruntime_module() -> Any:
    """The `onnxruntime` module; a UserError naming the extra to install when it is missing."""
    try:
        import onnxruntime
    except ImportError as error:
        raise UserError("exported prompt-aware models need ONNX Runtime: install router-runtime[onnx]") from error
    return onnxruntime


class PromptTokenizer:
    """The exported tokenizer (tokenizer.json + encoder.json), preparing text as the source sentence-transformer
    does; shared by `OnnxEncoder` and the Triton preprocess model. Needs `tokenizers` only."""

    def __init__(self, directory: Path) -> None:
        from tokenizers import Tokenizer

        self.config: dict[str, Any] = json.loads((directory / ENCODER_JSON).read_text())
        self.pad_token_id = int(self.config["pad_token_id"])
        self.tokenizer = Tokenizer.from_file(str(directory / TOKENIZER))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(int(self.config["max_seq_length"]))

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, prepared and truncated as the source sentence-transformer does."""
        if self.config.get("strip", True):
            texts = [t.strip() for t in texts]
        if self.config.get("lowercase", False):
            texts = [t.lower() for t in texts]
        encodings = self.tokenizer.encode_batch(list(texts))
        return [e.ids for e in encodings]

    def pad(self, ids: Sequence[Sequence[int]], width: int) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask, each shape (len(ids), width) int64, rows padded with the pad token."""
        tokens = np.full((len(ids), width), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for i, row in enumerate(ids):
            tokens[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return tokens, mask


class OnnxEncoder:
    """Embeds texts with the exported tokenizer and ONNX graph; `encode` returns (n, dimension) float32.

    The graph pools and normalises (encoder.json's `pooling` says how), so its output is used as it is; texts are
    prepared as encoder.json says (`strip`, `lowercase`, truncation at `max_seq_length`).
    """

    max_tokens = 2048
    """Default most padded tokens in one ONNX Runtime run (see `encode`)."""
    memory_arena = False
    """ONNX Runtime's CPU memory arena (`enable_cpu_mem_arena`). Off: the arena keeps the largest batch's
    activations for the life of the session; without it a serving process scoring 500 x 64 peaked at 303 MB instead
    of 342 MB (fp32; int8 250 vs 273 MB), and was no slower (benchmarks/runtime.py, docs/performance.md)."""

    def __init__(self, directory: Path, threads: int | None = None, cuda: bool = False) -> None:
        ort = onnxruntime_module()
        self.tokenizer = PromptTokenizer(directory)
        self.config = self.tokenizer.config
        self.dimension = int(self.config["dimension"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or available_cores()
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = self.memory_arena
        options.log_severity_level = 3  # warnings about unused CUDA kernels are noise for a user
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(directory / ENCODER_ONNX), options, providers=providers)
        self._int_types = {i.name: np.int32 if i.type == "tensor(int32)" else np.int64 for i in self.session.get_inputs()}

    @property
    def providers(self) -> list[str]:
        """ONNX Runtime execution providers in use, best first."""
        return list(self.session.get_providers())

    def encode(self, texts: Sequence[str], batch_size: int = 64, max_tokens: int | None = None) -> np.ndarray:
        """Embeddings, shape (len(texts), dimension), float32.

        Texts run shortest first in batches of at most `batch_size` texts and `max_tokens` padded tokens (default
        `self.max_tokens`), so long prompts run in small batches and short ones are not padded to their length.
        """
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        ids = self.tokenizer.tokenize(texts)
        order = [int(i) for i in np.argsort([len(i) for i in ids], kind="stable")]
        for rows in token_batches([len(ids[r]) for r in order], max(batch_size, 1), max_tokens or self.max_tokens):
            chosen = [order[i] for i in rows]
            tokens, mask = self.tokenizer.pad([ids[r] for r in chosen], max(len(ids[r]) for r in chosen))
            feed = {"input_ids": tokens, "attention_mask": mask}
            out[chosen] = self.session.run(None, {k: v.astype(self._int_types[k]) for k, v in feed.items()})[0]
        return out


def token_batches(lengths: Sequence[int], batch_size: int, max_tokens: int) -> list[range]:
    """Consecutive ranges over `lengths` (sorted ascending) of at most `batch_size` items whose padded size
    (items x the last item's length) stays within `max_tokens`; an item longer than `max_tokens` runs alone."""
    batches: list[range] = []
    start = 0
    for end in range(1, len(lengths) + 1):
        if end - start > batch_size or ((end - start) * max(lengths[end - 1], 1) > max_tokens and end - 1 > start):
            batches.append(range(start, end - 1))
            start = end - 1
    if start < len(lengths):
        batches.append(range(start, len(lengths)))
    return batches
