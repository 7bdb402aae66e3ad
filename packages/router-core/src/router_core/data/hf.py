"""Loading a dataset from the Hugging Face hub, failing fast with a clear message when offline."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Generator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

from router_core.errors import DataError

_TRUE = {"1", "true", "yes", "on"}


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub's host accepts a TCP connection within `timeout` seconds (False when offline mode is set)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUE or os.environ.get("HF_DATASETS_OFFLINE", "").lower() in _TRUE:
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def hub_offline(offline: bool) -> Generator[None]:
    """Within the block, `huggingface_hub` and `datasets` use only the local cache (when `offline`); the
    process-wide settings are restored afterwards, so one failed probe does not change later calls."""
    if not offline:
        yield
        return
    saved_env = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    os.environ.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    modules = [(m, getattr(m, "HF_HUB_OFFLINE")) for m in _offline_modules()]
    for module, _ in modules:
        module.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        for module, value in modules:
            module.HF_HUB_OFFLINE = value
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _offline_modules() -> list[Any]:
    """The already-imported modules that read HF_HUB_OFFLINE once, at import."""
    found = []
    for name in ("huggingface_hub.constants", "datasets.config"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "HF_HUB_OFFLINE"):
            found.append(module)
    return found


def load_hf_rows(name: str, split: str = "train", offline: bool | None = None) -> list[dict[str, Any]]:
    """Rows of an HF dataset split; only from the local HF cache when `offline` (None: when the hub cannot be
    reached)."""
    hint = f"HF dataset {name!r} is not available offline; download it where the hub is reachable or point data.path at local battle files"
    if offline is None:
        offline = not hub_reachable()
    try:
        import datasets
    except ImportError as error:
        raise DataError(f"loading {name!r} needs the `datasets` package: install router-core[hf]") from error
    try:
        with hub_offline(offline):
            table = datasets.load_dataset(name, split=split)
    except Exception as error:  # noqa: BLE001 - any failure here means the same thing to the user
        raise DataError(f"{hint} ({type(error).__name__}: {str(error)[:200]})") from error
    return table.to_list()
