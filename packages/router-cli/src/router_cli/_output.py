"""Writing a command's result file (`--output-path` of infer and evaluate, `--output` of schema): one function.

- a regular file, or a path that does not exist yet, is replaced atomically (a temporary sibling and a rename),
  the new file getting the usual umask-derived mode and an existing file keeping its mode;
- an existing symlink is followed: the file it points to is replaced, the link stays;
- anything else that exists (a FIFO, a character device such as /dev/null, `/dev/stdout`) is written directly;
- a directory, or a parent that is a file, is a clear error; no temporary file is left behind on any failure;
- with `exclusive=True` (default output paths), an existing file is never replaced: `name-2.json`, ... is used.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from router_core.errors import UserError


def write_json_output(path: Path, payload: Any, *, exclusive: bool = False) -> Path:
    """Write `payload` as indented JSON to `path` (see the module docstring); returns the path written."""
    return write_text_output(path, json.dumps(payload, indent=2) + "\n", exclusive=exclusive)


def write_text_output(path: Path, text: str, *, exclusive: bool = False) -> Path:
    """Write `text` to `path` (see the module docstring); returns the path written."""
    data = text.encode("utf-8")
    try:
        mode = os.stat(path).st_mode  # follows symlinks
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:
        raise UserError(f"cannot write {path}: a parent of it is a file, not a directory") from None
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise UserError(f"cannot write {path}: it is a directory; give a file path")
    if mode is not None and (not stat.S_ISREG(mode) or _is_special(path)):
        _write_directly(path, data)  # FIFO, character device, /dev/stdout (also when it is redirected to a file)
        return path
    if exclusive:
        _make_parent(path.parent, path)
        return _write_new(path, data)
    target = Path(os.path.realpath(path))  # a symlink (or a chain of them) is followed; the link stays
    _make_parent(target.parent, path)
    _replace_atomically(target, data, None if mode is None else stat.S_IMODE(mode))
    return path


def _is_special(path: Path) -> bool:
    """Paths such as /dev/stdout or /proc/self/fd/1: never replaced, even when they lead to a regular file."""
    return any(str(p).startswith(("/dev/", "/proc/")) for p in (Path(path).absolute(), Path(os.path.realpath(path))))


_FD_PATH_RE = re.compile(r"/dev/fd/(\d+)|/proc/self/fd/(\d+)")
_STD_PATHS = {"/dev/stdout": 1, "/dev/stderr": 2}


def _write_directly(path: Path, data: bytes) -> None:
    """Write to an existing non-regular file; /dev/stdout and /dev/fd/N go to our own descriptor, at its offset."""
    text = os.path.normpath(Path(path).absolute())
    match = _FD_PATH_RE.fullmatch(text)
    own_fd = _STD_PATHS.get(text, int(next(g for g in match.groups() if g)) if match else None)
    try:
        if own_fd is not None:
            sys.stdout.flush()
            sys.stderr.flush()
            _write_all(own_fd, data)
            return
        fd = os.open(path, os.O_WRONLY)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror}") from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _make_parent(parent: Path, given: Path) -> None:
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"cannot write {given}: a parent of it is a file, not a directory") from None
    except OSError as error:
        raise UserError(f"cannot write {given}: cannot create {parent} ({error.strerror})") from None


def _temporary(target: Path, data: bytes, mode: int | None) -> Path:
    """A fully written, fsynced temporary sibling of `target`; removed again if anything fails."""
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the kernel applies the umask
    except OSError as error:
        raise UserError(f"cannot write {target}: {error.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise UserError(f"cannot write {target}: {error.strerror}") from None
        raise
    return tmp


def _replace_atomically(target: Path, data: bytes, mode: int | None) -> None:
    tmp = _temporary(target, data, mode)
    try:
        os.replace(tmp, target)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise UserError(f"cannot write {target}: {error.strerror}") from None
        raise


def _write_new(target: Path, data: bytes) -> Path:
    """Link a complete temporary file to the first free name of `target`, `target-2`, ... (never replacing)."""
    tmp = _temporary(target, data, None)
    try:
        for attempt in range(1, 10_000):
            candidate = target if attempt == 1 else target.with_name(f"{target.stem}-{attempt}{target.suffix}")
            try:
                os.link(tmp, candidate)  # fails if the name exists: another run's result is never replaced
            except FileExistsError:
                continue
            except OSError as error:
                raise UserError(f"cannot write {candidate}: {error.strerror}") from None
            return candidate
        raise UserError(f"cannot write {target}: 10000 files of that name already exist")
    finally:
        tmp.unlink(missing_ok=True)


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse `type` for an integer option in [low, high] (argparse then exits 2 naming the option)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
        return value

    return parse
