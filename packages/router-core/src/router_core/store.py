"""The model store: `$ROUTER_HOME/models/<model_type>/<name>/{spec.json, meta.json, state files}`.

Saves are atomic: the new model is written to a temporary sibling directory and swapped in by renames, so a
crash leaves either the previous model or the new one, never a half-written directory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router_core.errors import UserError

SPEC_FILE, META_FILE = "spec.json", "meta.json"
_TRASH = ".trash-"


def default_home() -> Path:
    """`$ROUTER_HOME`, else `$XDG_DATA_HOME/llm-router`, else `~/.local/share/llm-router`."""
    if os.environ.get("ROUTER_HOME"):
        return Path(os.environ["ROUTER_HOME"]).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "llm-router"


@dataclass(frozen=True)
class SavedModel:
    """A model directory in the store and its metadata."""

    model_type: str
    name: str
    path: Path
    meta: dict[str, Any]

    @property
    def ref(self) -> str:
        """`TYPE/NAME`, the form `--model` takes."""
        return f"{self.model_type}/{self.name}"

    def spec(self) -> dict[str, Any]:
        """The training spec the model was trained with."""
        return json.loads((self.path / SPEC_FILE).read_text())


class ModelStore:
    """Saved models under one root directory."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.models_dir = self.home / "models"

    def path(self, model_type: str, name: str) -> Path:
        """Directory of a model (it may not exist)."""
        return self.models_dir / model_type / name

    def save(
        self, model_type: str, name: str, write_state: Callable[[Path], None], spec: dict[str, Any], meta: dict[str, Any]
    ) -> Path:
        """Write a model atomically, replacing any model of the same type and name; returns its directory."""
        final = self.path(model_type, name)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=final.parent))
        try:
            write_state(tmp)
            _write_json(tmp / SPEC_FILE, spec)
            _write_json(tmp / META_FILE, meta)
            _fsync_dir(tmp)
            trash = final.parent / f".{name}{_TRASH}{os.getpid()}"
            if final.exists():
                os.replace(final, trash)  # from here until the next rename, recover() brings the old model back
            os.replace(tmp, final)
            _fsync_dir(final.parent)
            shutil.rmtree(trash, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            self.recover(model_type, name)
            raise
        return final

    def recover(self, model_type: str, name: str) -> None:
        """Put back a model whose replacement was interrupted between the two renames of `save`."""
        final = self.path(model_type, name)
        if final.exists() or not final.parent.is_dir():
            return
        trashed = sorted(final.parent.glob(f".{name}{_TRASH}*"), key=lambda p: p.stat().st_mtime)
        if trashed:
            os.replace(trashed[-1], final)

    def resolve(self, ref: str) -> SavedModel:
        """Find `TYPE/NAME` (or a bare `NAME` when only one type has it); a clear error lists what exists."""
        model_type, _, name = ref.rpartition("/")
        if model_type:
            self.recover(model_type, name)
            candidates = [self.path(model_type, name)]
        else:
            candidates = sorted(self.models_dir.glob(f"*/{name}")) if self.models_dir.is_dir() else []
        found = [p for p in candidates if (p / META_FILE).is_file()]
        if len(found) == 1:
            return self._saved(found[0])
        if len(found) > 1:
            options = ", ".join(f"{p.parent.name}/{p.name}" for p in found)
            raise UserError(f"model name {name!r} exists for several types ({options}); give TYPE/NAME")
        existing = ", ".join(m.ref for m in self.list()) or "none"
        raise UserError(f"no saved model {ref!r} in {self.models_dir} (saved models: {existing})")

    def list(self) -> list[SavedModel]:
        """Every saved model, sorted by type then name."""
        if not self.models_dir.is_dir():
            return []
        return [self._saved(p) for p in sorted(self.models_dir.glob("*/*")) if (p / META_FILE).is_file()]

    def _saved(self, path: Path) -> SavedModel:
        return SavedModel(path.parent.name, path.name, path, json.loads((path / META_FILE).read_text()))


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, sort_keys=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
