"""The prompt encoder of transformer_embedding: where its base model comes from, its weights' sha256, its pooling
(read from the sentence-transformers config) and the torch module that turns token ids into one vector per prompt.

Bases are loaded from safetensors only (never pickle). Hub names go through `router_neural.embeddings.resolve_model`:
when the hub is unreachable only the local HF cache is tried, so a missing model fails within seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from router_core.errors import UserError
from router_neural.embeddings import _quiet_loggers, file_sha256, resolve_model

log = logging.getLogger(__name__)

POOLING_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls",
                 "pooling_mode_lasttoken": "last"}  # fmt: skip
"""sentence-transformers pooling flags this encoder implements, and their short names."""
UNSUPPORTED_POOLING = ("pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens")
HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model"]
"""What is fetched of a hub model: configs, safetensors weights, vocabularies (no pickled weights, no ONNX)."""


def base_directory(name: str) -> Path:
    """Local directory of the base model `name` (packaged MiniLM, a directory, or a hub name); a `UserError` when
    it cannot be had."""
    target, local_only = resolve_model(name)
    if Path(target).is_dir():
        return Path(target)
    from huggingface_hub import snapshot_download

    from router_core.data.hf import hub_offline

    try:
        with hub_offline(local_only), _quiet_loggers("huggingface_hub"):
            return Path(snapshot_download(target, local_files_only=local_only, allow_patterns=HUB_FILES))
    except Exception as error:  # noqa: BLE001 - hub, network and cache errors all mean "cannot get this model"
        where = ("the Hugging Face hub is unreachable and the model is not in the local HF cache" if local_only
                 else f"the hub could not provide it ({type(error).__name__})")  # fmt: skip
        raise UserError(f"cannot load transformer_model_name {name!r}: {where}. Use all-MiniLM-L6-v2 (packaged with "
                        "router-neural, works offline) or the path of a local model directory") from error


def weight_files(directory: Path) -> list[Path]:
    """The base's safetensors weight files (one, or the shards), sorted; a `UserError` when there are none."""
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise UserError(f"{directory} has no .safetensors weights (pickled weights are not loaded); "
                        "convert the model to safetensors")  # fmt: skip
    return files


def weights_sha256(directory: Path) -> str:
    """sha256 of the base's weights: that of the file when there is one, else of the shards' "name sha256" lines."""
    files = weight_files(directory)
    digests = [_cached_sha256(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    if len(files) == 1:
        return digests[0]
    lines = "".join(f"{f.name} {d}\n" for f, d in zip(files, digests, strict=True))
    return hashlib.sha256(lines.encode()).hexdigest()


@cache
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # part of the cache key only: a rewritten file is hashed again
    return file_sha256(Path(path))


@dataclass(frozen=True)
class Pooling:
    """How token vectors become the prompt vector."""

    mode: str  # "mean", "cls" or "last"
    normalize: bool


def read_pooling(directory: Path) -> Pooling:
    """The pooling of a sentence-transformers model directory (modules.json + its Pooling config); mean pooling
    without normalisation when the directory has no sentence-transformers config."""
    modules_file = directory / "modules.json"
    if not modules_file.is_file():
        log.info("%s has no sentence-transformers modules.json; using mean pooling", directory)
        return Pooling("mean", False)
    modules = json.loads(modules_file.read_text())
    types = [str(m.get("type", "")) for m in modules]
    normalize = any(t.endswith("Normalize") for t in types)
    pooling = [m for m in modules if str(m.get("type", "")).endswith("Pooling")]
    if not pooling:
        return Pooling("mean", normalize)
    config = json.loads((directory / pooling[0].get("path", "") / "config.json").read_text())
    chosen = [short for flag, short in POOLING_MODES.items() if config.get(flag)]
    unsupported = [flag for flag in UNSUPPORTED_POOLING if config.get(flag)]
    if unsupported or len(chosen) > 1:
        raise UserError(f"{directory}: pooling {', '.join(unsupported + chosen)} is not supported by "
                        "transformer_embedding (one of mean, CLS token or last token)")  # fmt: skip
    return Pooling(chosen[0] if chosen else "mean", normalize)


def pool(hidden: Tensor, mask: Tensor, pooling: Pooling) -> Tensor:
    """Prompt vectors (n, d) of token vectors `hidden` (n, L, d) under attention `mask` (n, L)."""
    if pooling.mode == "cls":
        out = hidden[:, 0]
    elif pooling.mode == "last":
        # the last real token, any padding side; a gather (no python indexing by batch size) so the ONNX export
        # keeps a dynamic batch
        last = (mask * torch.arange(mask.shape[1], device=mask.device)).argmax(1)
        out = hidden.gather(1, last.view(-1, 1, 1).expand(-1, 1, hidden.shape[2])).squeeze(1)
    else:
        weights = mask.unsqueeze(2).to(hidden.dtype)
        out = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    return nn.functional.normalize(out, dim=1) if pooling.normalize else out


class PromptEncoder(nn.Module):
    """A (fine-tunable) transformer + pooling: token ids (n, L) and mask (n, L) -> prompt vectors (n, d), float32."""

    def __init__(self, backbone: nn.Module, pooling: Pooling) -> None:
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:  # noqa: D102
        hidden = self.backbone(input_ids=ids, attention_mask=mask).last_hidden_state
        return pool(hidden.float(), mask, self.pooling)


def load_tokenizer(directory: Path) -> Any:
    """The base's tokenizer; decoder models without a padding token pad with their end-of-sequence token."""
    from transformers import AutoTokenizer

    with _quiet_loggers("transformers"):
        tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    if tokenizer.pad_token_id is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_backbone(directory: Path, **kwargs: Any) -> nn.Module:
    """The base's `AutoModel` (no task head, no BERT pooler) from safetensors, float32 unless quantised."""
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    weight_files(directory)
    options: dict[str, Any] = {"local_files_only": True, "use_safetensors": True, "trust_remote_code": False} | kwargs
    if "quantization_config" not in kwargs:
        options["dtype"] = torch.float32
    with _quiet_loggers("transformers"):
        try:  # BERT-like models build an unused pooler unless told not to; others do not take the argument
            return AutoModel.from_pretrained(str(directory), add_pooling_layer=False, **options)
        except TypeError:
            return AutoModel.from_pretrained(str(directory), **options)
