"""Model store: layout, resolution, clear errors, atomic replacement."""

import json
import os
from pathlib import Path

import pytest

from router_core.errors import UserError
from router_core.store import ModelStore


def _writer(text: str):
    def write(directory: Path) -> None:
        (directory / "state.json").write_text(text)

    return write


def test_save_layout_and_resolve(tmp_path: Path):
    store = ModelStore(tmp_path)
    path = store.save("elo_scoring", "m1", _writer("{}"), {"spec": 1}, {"created": "now"})
    assert path == tmp_path / "models" / "elo_scoring" / "m1"
    assert sorted(p.name for p in path.iterdir()) == ["meta.json", "spec.json", "state.json"]
    assert store.resolve("elo_scoring/m1").path == path
    assert store.resolve("m1").ref == "elo_scoring/m1"
    assert [m.ref for m in store.list()] == ["elo_scoring/m1"]


def test_unknown_model_lists_what_exists(tmp_path: Path):
    store = ModelStore(tmp_path)
    store.save("elo_scoring", "m1", _writer("{}"), {}, {})
    with pytest.raises(UserError, match=r"no saved model 'elo_scoring/nope'.*elo_scoring/m1"):
        store.resolve("elo_scoring/nope")


def test_ambiguous_bare_name(tmp_path: Path):
    store = ModelStore(tmp_path)
    store.save("a_type", "m", _writer("{}"), {}, {})
    store.save("b_type", "m", _writer("{}"), {}, {})
    with pytest.raises(UserError, match="several types"):
        store.resolve("m")


def test_crash_while_writing_keeps_previous_model(tmp_path: Path):
    store = ModelStore(tmp_path)
    store.save("t", "m", _writer("old"), {}, {"v": 1})

    def crash(directory: Path) -> None:
        (directory / "state.json").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        store.save("t", "m", crash, {}, {"v": 2})
    saved = store.resolve("t/m")
    assert (saved.path / "state.json").read_text() == "old" and saved.meta == {"v": 1}
    assert [p.name for p in saved.path.parent.iterdir()] == ["m"]  # no temporary left behind


def test_crash_between_renames_is_recovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    store = ModelStore(tmp_path)
    store.save("t", "m", _writer("old"), {}, {"v": 1})
    real_replace = os.replace
    calls = []

    def replace_then_die(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the old model is already moved aside; the new one never lands
            raise OSError("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_then_die)
    with pytest.raises(OSError):
        store.save("t", "m", _writer("new"), {}, {"v": 2})
    monkeypatch.setattr(os, "replace", real_replace)
    assert (store.resolve("t/m").path / "state.json").read_text() == "old"


def test_replacing_a_model(tmp_path: Path):
    store = ModelStore(tmp_path)
    store.save("t", "m", _writer("old"), {}, {"v": 1})
    store.save("t", "m", _writer("new"), {}, {"v": 2})
    saved = store.resolve("t/m")
    assert json.loads((saved.path / "meta.json").read_text()) == {"v": 2}
    assert [p.name for p in saved.path.parent.iterdir()] == ["m"]


def test_router_home_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("ROUTER_HOME", str(tmp_path / "h"))
    assert ModelStore().models_dir == tmp_path / "h" / "models"
