"""The prompt encoder of transformer_embedding: a Hugging Face transformer plus the pooling its
sentence-transformers config names (mean / CLS / last token), loaded from a verified local directory.

`locate_base` finds the base's files (the packaged MiniLM, a local directory, or a hub snapshot; offline only the
local HF cache is tried, so a missing model fails within seconds) and fingerprints its weights (sha256 of
model.safetensors), which saved models record so that loading can check they are applied to the same base.
"""

from __future__ import annotations

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

POOLING_KEYS = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls", "pooling_mode_lasttoken": "last"}
WEIGHTS = "model.safetensors"
_SNAPSHOT_FILES = ["*.json", "*.txt", "*.model", WEIGHTS]  # configs, vocabularies, sentencepiece, safetensors only


@dataclass(frozen=True)
class BaseEncoder:
    """Where a base transformer's files are and what its sentence-transformers config says."""

    name: str
    """The name the spec gives (transformer_model_name)."""
    directory: Path
    weights_sha256: str
    """sha256 of the base's model.safetensors."""
    pooling: str
    """"mean", "cls" or "last" (last token)."""
    normalize: bool
    """Whether the sentence-transformers pipeline L2-normalises the pooled vector."""


def locate_base(name: str) -> BaseEncoder:
    """The base encoder `name` names (see the module docstring); a `UserError` when it cannot be found."""
    target, local_only = resolve_model(name)
    directory = Path(target) if Path(target).is_dir() else _snapshot(name, target, local_only)
    weights = directory / WEIGHTS
    if not weights.is_file():
        raise UserError(f"transformer_model_name {name!r}: {directory} has no {WEIGHTS} (only safetensors weights "
                        "are loaded)")  # fmt: skip
    pooling, normalize = _sentence_config(directory)
    return BaseEncoder(name, directory, _sha256(weights, weights.stat().st_size, weights.stat().st_mtime_ns), pooling,
                       normalize)  # fmt: skip


@cache
def _sha256(path: Path, size: int, mtime_ns: int) -> str:  # size and mtime key the cache: a changed file is rehashed
    return file_sha256(path)


def _snapshot(name: str, repo_id: str, local_only: bool) -> Path:
    from huggingface_hub import snapshot_download

    from router_core.data.hf import hub_offline

    try:
        with hub_offline(local_only), _quiet_loggers("huggingface_hub"):
            return Path(snapshot_download(repo_id, allow_patterns=_SNAPSHOT_FILES, local_files_only=local_only))
    except Exception as error:  # noqa: BLE001 - missing repo, no network, bad name all mean "cannot load"
        where = ("the Hugging Face hub is unreachable and the model is not in the local HF cache" if local_only
                 else f"the hub could not provide it: {type(error).__name__}")  # fmt: skip
        raise UserError(f"cannot load transformer_model_name {name!r}: {where}. Use all-MiniLM-L6-v2 (packaged with "
                        "router-neural, works offline) or the path of a local sentence-transformers directory") from error


def _sentence_config(directory: Path) -> tuple[str, bool]:
    """Pooling mode and normalisation from modules.json (no modules.json: a plain transformer, mean pooling)."""
    modules_file = directory / "modules.json"
    if not modules_file.is_file():
        log.info("%s has no sentence-transformers modules.json; using mean pooling", directory)
        return "mean", False
    modules = json.loads(modules_file.read_text())
    types = [m.get("type", "") for m in modules]
    normalize = any(t.endswith("models.Normalize") for t in types)
    pooling_dirs = [m.get("path", "") for m in modules if m.get("type", "").endswith("models.Pooling")]
    if not pooling_dirs:
        return "mean", normalize
    config_file = (directory / pooling_dirs[0] / "config.json").resolve()
    if directory.resolve() not in config_file.parents or not config_file.is_file():
        raise UserError(f"{modules_file}: pooling config {pooling_dirs[0]!r} is not a file inside the model directory")
    config = json.loads(config_file.read_text())
    modes = [mode for key, mode in POOLING_KEYS.items() if config.get(key)]
    others = [k for k, v in config.items() if k.startswith("pooling_mode_") and v and k not in POOLING_KEYS]
    if len(modes) != 1 or others:
        raise UserError(f"{config_file}: pooling {sorted(k for k, v in config.items() if k.startswith('pooling_mode_') and v)}"
                        " is not supported; transformer_embedding pools by exactly one of mean, CLS or last token")  # fmt: skip
    return modes[0], normalize


def load_tokenizer(base: BaseEncoder) -> Any:
    """The base's fast tokenizer, padding on the right (last-token pooling relies on it)."""
    from transformers import AutoTokenizer

    with _quiet_loggers("transformers"):
        tokenizer = AutoTokenizer.from_pretrained(str(base.directory), local_files_only=True, use_fast=True)
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_backbone(base: BaseEncoder, quantization: Any = None, device: torch.device | None = None) -> nn.Module:
    """The base transformer (`AutoModel`, safetensors only, no remote code), without its pooler (unused here).

    `quantization` is a transformers `BitsAndBytesConfig` (QLoRA); the model is then placed on `device` as it loads.
    """
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    kwargs: dict[str, Any] = {}
    if quantization is not None:
        kwargs = {"quantization_config": quantization, "device_map": {"": str(device or "cpu")}}
    with _quiet_loggers("transformers"):
        model = AutoModel.from_pretrained(str(base.directory), local_files_only=True, use_safetensors=True,
                                          trust_remote_code=False, **kwargs)  # fmt: skip
    if getattr(model, "pooler", None) is not None:
        model.pooler = None  # BERT-style pooler: trained for next-sentence prediction, never used by sentence pooling
    return model


class PromptEncoder(nn.Module):
    """Token ids -> one float32 vector per text: transformer, then the base's pooling (and normalisation)."""

    def __init__(self, backbone: nn.Module, pooling: str, normalize: bool, width: int) -> None:
        super().__init__()
        self.backbone, self.pooling, self.normalize, self.width = backbone, pooling, normalize, width

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Vectors (n, width) of right-padded `input_ids` (n, length) with `attention_mask` (n, length)."""
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state.float()
        mask = attention_mask.unsqueeze(2).to(hidden.dtype)
        if self.pooling == "mean":
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        elif self.pooling == "cls":
            pooled = hidden[:, 0]
        else:  # last token: the last position the mask keeps (right padding)
            last = attention_mask.sum(1).clamp(min=1) - 1
            pooled = hidden[torch.arange(len(hidden), device=hidden.device), last]
        return nn.functional.normalize(pooled, dim=1) if self.normalize else pooled
