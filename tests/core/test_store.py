"""Model store: layout, resolution, clear errors, atomic replacement, crash recovery, locking, damaged models."""

import json
import os
import re
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from router_core import store as store_module
from router_core.errors import DataError, UserError
from router_core.store import ModelStore


def _writer(text: str):
    def write(directory: Path) -> None:
        (directory / "state.json").write_text(text)

    return write


def _entries(directory: Path) -> list[str]:
    """What a type directory holds, lock files aside (they stay, empty, by design)."""
    return sorted(p.name for p in directory.iterdir() if not p.name.endswith(".lock"))


def _state(store: ModelStore, ref: str) -> str:
    return (store.resolve(ref).path / "state.json").read_text()


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
    assert _entries(saved.path.parent) == ["m"]  # no temporary left behind


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
    assert _state(store, "t/m") == "old"


def test_replacing_a_model(tmp_path: Path):
    store = ModelStore(tmp_path)
    store.save("t", "m", _writer("old"), {}, {"v": 1})
    store.save("t", "m", _writer("new"), {}, {"v": 2})
    saved = store.resolve("t/m")
    assert json.loads((saved.path / "meta.json").read_text()) == {"v": 2}
    assert _entries(saved.path.parent) == ["m"]


def test_router_home_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("ROUTER_HOME", str(tmp_path / "h"))
    assert ModelStore().models_dir == tmp_path / "h" / "models"


# --- references stay inside the store ------------------------------------------------------------------------------

HOSTILE_REFS = [
    "elo_scoring/../../../../tmp/x",
    "../x",
    "/tmp/x",
    "elo_scoring//x",
    "a/b/c",
    "quick*",
    "elo_scoring/quick?",
    "elo_scoring/[ab]",
    "evil\n",
    "elo_scoring/evil\x00",
    "x" * 300,
    "",
    ".hidden",
    "elo_scoring/.m.trash-1",
    "Elo Scoring/m",
    "m@ep",
]


@pytest.mark.parametrize("ref", HOSTILE_REFS)
def test_hostile_references_are_refused_before_touching_the_disk(tmp_path: Path, ref: str):
    outside = tmp_path / "outside"
    (outside / ".x.trash-1").mkdir(parents=True)
    (outside / ".x.trash-1" / "meta.json").write_text("{}")
    store = ModelStore(tmp_path / "home")
    with pytest.raises(UserError, match="invalid model reference"):
        store.resolve(ref)
    assert _entries(outside) == [".x.trash-1"]  # nothing outside the store is ever recovered or moved


def test_checkpoint_references_resolve(tmp_path: Path):
    store = ModelStore(tmp_path)
    store.save("t", "m@ep3", _writer("ep3"), {}, {})
    assert _state(store, "t/m@ep3") == "ep3" and _state(store, "m@ep3") == "ep3"


# --- leftovers of interrupted saves --------------------------------------------------------------------------------


def _leftover(type_dir: Path, name: str, state: str) -> Path:
    path = type_dir / name
    path.mkdir(parents=True)
    for file, text in (("state.json", state), ("meta.json", "{}"), ("spec.json", "{}")):
        (path / file).write_text(text)
    return path


def test_leftovers_are_never_listed_and_every_reader_recovers(tmp_path: Path):
    store = ModelStore(tmp_path)
    store.save("t", "other", _writer("other"), {}, {})
    type_dir = tmp_path / "models" / "t"
    _leftover(type_dir, ".victim.trash-1abc", "old")  # a kill after the first rename of a save of `victim`
    _leftover(type_dir, ".victim.tmp-2def", "new")
    _leftover(type_dir, ".other.tmp-9zz", "half")  # a kill while writing
    assert [m.ref for m in store.list()] == ["t/other", "t/victim"]
    assert _entries(type_dir) == ["other", "victim"]
    assert _state(store, "victim") == "old"  # a bare name resolves too


@pytest.mark.parametrize("reader", ["resolve_bare", "resolve_typed", "list"])
def test_each_read_path_restores_a_model_caught_between_renames(tmp_path: Path, reader: str):
    store = ModelStore(tmp_path)
    _leftover(tmp_path / "models" / "t", ".victim.trash-1abc", "old")
    {"resolve_bare": lambda: store.resolve("victim"), "resolve_typed": lambda: store.resolve("t/victim"),
     "list": store.list}[reader]()  # fmt: skip
    assert _entries(tmp_path / "models" / "t") == ["victim"] and _state(store, "t/victim") == "old"


def test_a_save_in_progress_keeps_its_temporary_directory(tmp_path: Path):
    store = ModelStore(tmp_path)
    store.save("t", "m", _writer("old"), {}, {})
    seen = {}

    def write(directory: Path) -> None:
        (directory / "state.json").write_text("new")
        store.list()  # another reader cleans up while this save is writing: it must not touch our directory
        seen["kept"] = directory.is_dir()

    store.save("t", "m", write, {}, {})
    assert seen == {"kept": True} and _state(store, "t/m") == "new"


def _crashing_save(home: Path, crash_at: int) -> int:
    """Run one save in a child process that dies (os._exit, no clean-up) at its `crash_at`-th store step."""
    pid = os.fork()
    if pid == 0:  # child
        try:
            steps = [0]

            def step(fn):
                def wrapped(*args, **kwargs):
                    steps[0] += 1
                    if steps[0] == crash_at:
                        os._exit(17)
                    return fn(*args, **kwargs)

                return wrapped

            os.replace = step(os.replace)
            tempfile.mkdtemp = step(tempfile.mkdtemp)
            shutil.rmtree = step(shutil.rmtree)
            store_module._write_json = step(store_module._write_json)
            store_module._fsync_dir = step(store_module._fsync_dir)
            ModelStore(home).save("t", "m", step(_writer("new")), {}, {"v": 2})
            os._exit(0)
        finally:
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_a_kill_at_every_step_of_a_save_leaves_the_old_or_the_new_model(tmp_path: Path):
    outcomes = []
    for crash_at in range(1, 40):
        home = tmp_path / f"h{crash_at}"
        store = ModelStore(home)
        store.save("t", "m", _writer("old"), {}, {"v": 1})
        code = _crashing_save(home, crash_at)
        assert code in (0, 17)
        assert [m.ref for m in store.list()] == ["t/m"]
        state = _state(store, "t/m")
        assert state in ("old", "new")
        assert _entries(home / "models" / "t") == ["m"], crash_at  # the reader cleaned every leftover
        outcomes.append(state)
        if code == 0:
            break
    assert code == 0 and len(outcomes) >= 8  # every step up to a completed save was killed once
    assert outcomes[0] == "old" and outcomes[-1] == "new"
    assert outcomes == sorted(outcomes, key=["old", "new"].index)  # once the new model is in, it stays


def test_concurrent_saves_of_one_name_are_serialised(tmp_path: Path, caplog):
    store = ModelStore(tmp_path)
    inside = threading.Semaphore(0)
    release = threading.Event()

    def slow(directory: Path) -> None:
        inside.release()
        release.wait(5)
        (directory / "state.json").write_text("first")

    first = threading.Thread(target=store.save, args=("t", "m", slow, {}, {"run": 1}))
    first.start()
    inside.acquire(timeout=5)
    second = threading.Thread(target=store.save, args=("t", "m", _writer("second"), {}, {"run": 2}))
    second.start()
    second.join(0.3)
    assert second.is_alive()  # waits for the first save's lock
    release.set()
    first.join(5)
    second.join(5)
    assert _state(store, "t/m") == "second"  # the later save wins
    assert "another run is saving t/m" in caplog.text
    assert _entries(tmp_path / "models" / "t") == ["m"]


def test_racing_saves_from_processes_never_fail(tmp_path: Path):
    children = []
    for writer in range(4):
        pid = os.fork()
        if pid == 0:
            try:
                store = ModelStore(tmp_path)
                for i in range(15):
                    store.save("t", "m", _writer(f"{writer}-{i}"), {}, {"w": writer})
                os._exit(0)
            finally:
                os._exit(1)
        children.append(pid)
    assert [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children] == [0, 0, 0, 0]
    store = ModelStore(tmp_path)
    assert _state(store, "t/m").endswith("-14") and _entries(tmp_path / "models" / "t") == ["m"]


# --- damaged models ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "text", "reason"),
    [("meta.json", "{not json", "not valid JSON"), ("meta.json", "[1, 2]", "expected a JSON object"),
     ("spec.json", "", "not valid JSON"), ("spec.json", None, "file missing")],
)  # fmt: skip
def test_a_damaged_model_is_listed_as_damaged_and_hides_nothing(tmp_path: Path, file: str, text: str | None, reason: str):
    store = ModelStore(tmp_path)
    for name in ("a", "broken", "z"):
        store.save("t", name, _writer(name), {"s": 1}, {"m": 1})
    target = tmp_path / "models" / "t" / "broken" / file
    target.unlink() if text is None else target.write_text(text)
    listed = {m.ref: m.damaged for m in store.list()}
    assert listed["t/a"] is None and listed["t/z"] is None
    assert file in listed["t/broken"] and reason in listed["t/broken"]
    with pytest.raises(DataError, match=rf"t/broken is damaged: .*{file}: {reason}"):
        store.resolve("t/broken")
    assert _state(store, "t/a") == "a"


def test_list_cli_shows_damaged_models(tmp_path: Path, router_home: Path, capsys):
    from router_cli import main

    store = ModelStore()
    store.save("t", "good", _writer("x"), {}, {"created": "2026", "metrics": {"validation_accuracy": 0.5}})
    store.save("t", "bad", _writer("x"), {}, {})
    (router_home / "models" / "t" / "bad" / "meta.json").write_text("{")
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "t/good" in out and "0.5000" in out
    assert re.search(r"t/bad +DAMAGED: .*meta.json: not valid JSON", out)
    assert main(["list", "--json"]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["t/good"]["damaged"] is None and "meta.json" in rows["t/bad"]["damaged"]


def test_a_lookup_between_the_renames_of_a_save_waits_for_it(tmp_path: Path):
    store = ModelStore(tmp_path)
    store.save("t", "m", _writer("old"), {}, {})
    moved_aside = threading.Event()
    finish = threading.Event()
    real_replace = os.replace

    def replace(src, dst):
        real_replace(src, dst)
        if ".trash-" in str(dst):  # the old model is aside, the new one not in yet
            moved_aside.set()
            finish.wait(5)

    def save() -> None:
        os_replace, os.replace = os.replace, replace
        try:
            store.save("t", "m", _writer("new"), {}, {})
        finally:
            os.replace = os_replace

    saver = threading.Thread(target=save)
    saver.start()
    assert moved_aside.wait(5)
    threading.Timer(0.2, finish.set).start()
    assert _state(store, "t/m") == "new"  # not "no saved model", and not the old model restored under a live save
    saver.join(5)
    assert _entries(tmp_path / "models" / "t") == ["m"]
