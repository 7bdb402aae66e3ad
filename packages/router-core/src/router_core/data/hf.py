"""Loading a dataset from the Hugging Face hub, failing fast with a clear message when offline."""

from __future__ import annotations

import os
import socket
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


def load_hf_rows(name: str, split: str = "train") -> list[dict[str, Any]]:
    """Rows of an HF dataset split; from the local HF cache when the hub cannot be reached."""
    hint = f"HF dataset {name!r} is not available offline; download it where the hub is reachable or point data.path at local battle files"
    if not hub_reachable():
        os.environ["HF_HUB_OFFLINE"] = "1"  # read before `datasets` is imported: use the cache, never wait on the network
        os.environ["HF_DATASETS_OFFLINE"] = "1"
    try:
        import datasets
    except ImportError as error:
        raise DataError(f"loading {name!r} needs the `datasets` package: install router-core[hf]") from error
    try:
        table = datasets.load_dataset(name, split=split)
    except Exception as error:  # noqa: BLE001 - any failure here means the same thing to the user
        raise DataError(f"{hint} ({type(error).__name__}: {str(error)[:200]})") from error
    return table.to_pandas().to_dict("records")
