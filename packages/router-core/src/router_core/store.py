"""The model store: `$ROUTER_HOME/models/<model_type>/<name>/{spec.json, meta.json, state files}`.

Saves are atomic: the new model is written to a temporary sibling directory `.NAME.tmp-XXXX` and swapped in by
renames (the old model goes aside as `.NAME.trash-XXXX` for the moment between them), so a crash leaves either
the previous model or the new one, never a half-written directory. Saves of one name hold an exclusive lock on
`.NAME.lock`, so concurrent saves run one after the other and the later one wins.

Leftovers of an interrupted save are never listed or resolved; every path that reads the store puts back a
model caught between the renames and deletes the rest, taking the name's lock first (a save in progress keeps
its temporary directory). References are checked by `check_model_ref`, so they always name a directory inside
the store; nothing outside `models/` is ever renamed or deleted.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router_core.errors import DataError, UserError
from router_core.specs.training import check_model_ref, check_model_type

log = logging.getLogger(__name__)

SPEC_FILE, META_FILE = "spec.json", "meta.json"
_LEFTOVER_RE = re.compile(r"\.(?P<name>.+)\.(?P<kind>tmp|trash)-[A-Za-z0-9_]+")


def default_home() -> Path:
    """`$ROUTER_HOME`, else `$XDG_DATA_HOME/llm-router`, else `~/.local/share/llm-router`."""
    if os.environ.get("ROUTER_HOME"):
        return Path(os.environ["ROUTER_HOME"]).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "llm-router"


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file holding one object; a `DataError` naming the file when it is missing, damaged or not an object."""
    try:
        with path.open(encoding="utf-8") as handle:
            value = json.load(handle)
    except FileNotFoundError:
        raise DataError(f"{path}: file missing") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot be read ({error})") from None
    except (json.JSONDecodeError, RecursionError) as error:
        raise DataError(f"{path}: not valid JSON ({str(error)[:120]})") from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


DAMAGE = (KeyError, IndexError, TypeError, ValueError, AttributeError, FileNotFoundError)
"""What reading a model's files raises when they are incomplete or altered (a missing key, a wrong shape, ...)."""


@contextmanager
def reading_model_files(path: Path) -> Generator[None, None, None]:
    """Turn the errors of reading a damaged model directory into one `DataError` naming it."""
    try:
        yield
    except DataError:
        raise
    except DAMAGE as error:
        raise DataError(f"{path}: damaged model files ({type(error).__name__}: {str(error)[:160]})") from None


@dataclass(frozen=True)
class SavedModel:
    """A model directory in the store and its metadata (`damaged` says why it cannot be used, None if it can)."""

    model_type: str
    name: str
    path: Path
    meta: dict[str, Any]
    damaged: str | None = None

    @property
    def ref(self) -> str:
        """`TYPE/NAME`, the form `--model` takes."""
        return f"{self.model_type}/{self.name}"

    def spec(self) -> dict[str, Any]:
        """The training spec the model was trained with."""
        return read_json_object(self.path / SPEC_FILE)


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
        _checked(f"{model_type}/{name}")
        final = self.path(model_type, name)
        final.parent.mkdir(parents=True, exist_ok=True)
        with _name_lock(final, wait=True):
            _recover(final)
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=final.parent))
            trash: Path | None = None
            try:
                write_state(tmp)
                _write_json(tmp / SPEC_FILE, spec)
                _write_json(tmp / META_FILE, meta)
                _fsync_dir(tmp)
                if final.exists():
                    trash = Path(tempfile.mkdtemp(prefix=f".{name}.trash-", dir=final.parent))
                    os.replace(final, trash)  # until the next rename, _recover brings the old model back
                os.replace(tmp, final)
                _fsync_dir(final.parent)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                _recover(final)
                raise
            if trash is not None:
                shutil.rmtree(trash, ignore_errors=True)
        return final

    def resolve(self, ref: str) -> SavedModel:
        """Find `TYPE/NAME` (or a bare `NAME` when only one type has it); a clear error lists what exists."""
        _checked(ref)
        model_type, _, name = ref.rpartition("/")
        types = [model_type] if model_type else self._types()
        for t in types:
            self._clean(t, waiting_for=name)
        found = [p for p in (self.path(t, name) for t in types) if p.is_dir()]
        if len(found) > 1:
            options = ", ".join(f"{p.parent.name}/{p.name}" for p in found)
            raise UserError(f"model name {name!r} exists for several types ({options}); give TYPE/NAME")
        if not found:
            existing = ", ".join(m.ref for m in self.list()) or "none"
            raise UserError(f"no saved model {ref!r} in {self.models_dir} (saved models: {existing})")
        saved = _saved(found[0])
        if saved.damaged:
            raise DataError(f"saved model {saved.ref} is damaged: {saved.damaged}")
        return saved

    def list(self) -> list[SavedModel]:
        """Every saved model, sorted by type then name; damaged ones are included with `damaged` set."""
        models = []
        for model_type in self._types():
            self._clean(model_type)
            for path in sorted((self.models_dir / model_type).iterdir()):
                if path.is_dir() and _is_name(path.name):
                    models.append(_saved(path))
        return models

    def _types(self) -> list[str]:
        if not self.models_dir.is_dir():
            return []
        return sorted(p.name for p in self.models_dir.iterdir() if p.is_dir() and _is_type(p.name))

    def _clean(self, model_type: str, waiting_for: str | None = None) -> None:
        """Recover or delete the leftovers of interrupted saves of one type.

        Names being saved are left alone, except `waiting_for` (the model being resolved): a save of it in
        progress is waited for, so a lookup between the save's two renames finds the model.
        """
        type_dir = self.models_dir / model_type
        if not type_dir.is_dir():
            return
        names = {m["name"] for p in type_dir.iterdir() if (m := _LEFTOVER_RE.fullmatch(p.name)) and _is_name(m["name"])}
        for name in sorted(names):
            try:
                with _name_lock(type_dir / name, wait=name == waiting_for, quiet=True) as locked:
                    if locked:
                        _recover(type_dir / name)
            except OSError as error:  # a read-only store: leftovers stay hidden, nothing else changes
                log.debug("cannot clean leftovers of %s: %s", type_dir / name, error)


def _checked(ref: str) -> str:
    try:
        return check_model_ref(ref)
    except ValueError as error:
        raise UserError(f"invalid model reference {ref!r}: {error}") from None


def _is_type(name: str) -> bool:
    try:
        check_model_type(name)
    except ValueError:
        return False
    return True


def _is_name(name: str) -> bool:
    try:
        check_model_ref(name)
    except ValueError:
        return False
    return True


def _saved(path: Path) -> SavedModel:
    """The model at `path`, or a `SavedModel` marked damaged with the reason when its JSON files are unusable."""
    try:
        meta = read_json_object(path / META_FILE)
        read_json_object(path / SPEC_FILE)
    except DataError as error:
        return SavedModel(path.parent.name, path.name, path, {}, damaged=str(error))
    return SavedModel(path.parent.name, path.name, path, meta)


@contextmanager
def _name_lock(final: Path, wait: bool, quiet: bool = False) -> Generator[bool, None, None]:
    """Exclusive lock on `.NAME.lock` beside the model; yields False when `wait` is False and it is held."""
    with open(final.parent / f".{final.name}.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                yield False
                return
            if not quiet:
                log.warning("another run is saving %s/%s; waiting for it, then this save replaces it",
                            final.parent.name, final.name)  # fmt: skip
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _recover(final: Path) -> None:
    """With the name's lock held: put back a model moved aside by an interrupted save, delete the other leftovers."""
    kinds = {p: m["kind"] for p in final.parent.iterdir() if (m := _LEFTOVER_RE.fullmatch(p.name)) and m["name"] == final.name}
    leftovers = list(kinds)
    trashed = sorted((p for p, kind in kinds.items() if kind == "trash"), key=_mtime)
    if not final.exists() and trashed:
        os.replace(trashed[-1], final)
        log.warning("restored %s/%s, whose replacement was interrupted", final.parent.name, final.name)
        leftovers.remove(trashed[-1])
    for path in leftovers:
        shutil.rmtree(path, ignore_errors=True)


def _mtime(path: Path) -> float:
    return path.lstat().st_mtime


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
