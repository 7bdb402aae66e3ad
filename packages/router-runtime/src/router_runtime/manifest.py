"""`manifest.json` of an exported model directory: what it holds, where it came from, and a sha256 per file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from router_core.errors import UserError
from router_core.versions import package_versions as versions_of

MANIFEST = "manifest.json"
FORMAT_NAME = "llm-router-exported-model"
FORMAT_VERSION = 1
_PACKAGES = ("router-core", "router-neural", "router-runtime", "numpy", "torch", "onnx", "onnxruntime",
             "onnxruntime-gpu", "tokenizers", "sentence-transformers", "transformers", "xgboost")  # fmt: skip
KNOWN_FILES = frozenset({"model.onnx", "tokenizer.json", "encoder.json", "scaler.json", "head.json",
                         "head.safetensors", "scores.json", "calibration.json", "booster.json", "trees.json",
                         "length.json"})  # fmt: skip
"""Every file name an exported directory may hold (a manifest naming anything else is refused)."""


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of the packages that wrote (or read) an export, for the manifest."""
    return versions_of(_PACKAGES)


def write_manifest(directory: Path, fields: dict[str, Any], files: list[str]) -> dict[str, Any]:
    """Write manifest.json with `fields`, the format tag and the sha256 of each of `files`; returns it."""
    manifest = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **fields, "versions": package_versions(),
                "files": {name: sha256_of(directory / name) for name in sorted(files)}}  # fmt: skip
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(directory: Path, check_files: bool = True) -> dict[str, Any]:
    """The manifest of an exported directory after checking every listed file's sha256 (with `check_files` False
    only the manifest itself: for telling what an export is before a load that checks them); a UserError otherwise."""
    path = directory / MANIFEST
    if not path.is_file():
        raise UserError(f"{directory} is not an exported model: it has no {MANIFEST} (make one with router-cli export)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise UserError(f"{path}: not an llm-router export manifest (format {manifest.get('format')!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path}: export format version {manifest.get('format_version')!r}; this version reads "
                        f"{FORMAT_VERSION}: export the model again")  # fmt: skip
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise UserError(f"{path}: the manifest lists no files")
    for name, expected in files.items():
        if name not in KNOWN_FILES:
            raise UserError(f"{path}: lists an unexpected file {name!r}")
        if not check_files:
            continue
        target = directory / name
        if not target.is_file():
            raise UserError(f"exported model {directory} is incomplete: {name} is missing")
        if sha256_of(target) != expected:
            raise UserError(f"exported model {directory}: {name} was altered (its sha256 differs from the manifest)")
    return manifest
