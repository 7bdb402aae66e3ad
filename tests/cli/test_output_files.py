"""Result files (`--output-path` of infer and evaluate, `--output` of schema): what gets replaced, what is written
directly, what is an error, and that nothing is left behind (router_cli._output)."""

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from router_cli import _output, main
from router_cli._output import write_json_output
from router_core.errors import UserError


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_a_new_file_gets_the_umask_mode_and_a_replaced_one_keeps_its_mode(tmp_path: Path, umask: int):
    old = os.umask(umask)
    try:
        path = write_json_output(tmp_path / "new" / "out.json", {"a": 1})  # parents are created
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
        path.chmod(0o640)
        inode = path.stat().st_ino
        write_json_output(path, {"a": 2})
        assert json.loads(path.read_text()) == {"a": 2} and stat.S_IMODE(path.stat().st_mode) == 0o640
        assert path.stat().st_ino != inode  # replaced by a rename, never rewritten in place
    finally:
        os.umask(old)
    assert _leftovers(path.parent) == []


def test_a_symlink_is_followed_and_stays_a_link(tmp_path: Path):
    target = tmp_path / "real" / "scores.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_json_output(link, [1])
    assert link.is_symlink() and json.loads(target.read_text()) == [1]
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "real" / "later.json")
    write_json_output(dangling, [2])
    assert dangling.is_symlink() and json.loads((tmp_path / "real" / "later.json").read_text()) == [2]


def test_a_fifo_is_written_directly(tmp_path: Path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    write_json_output(fifo, {"x": 1})
    reader.join(5)
    assert json.loads(received[0]) == {"x": 1} and stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_character_device_is_written_not_replaced():
    write_json_output(Path("/dev/null"), {"x": 1})
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    if Path("/dev/full").exists():
        with pytest.raises(UserError, match="cannot write /dev/full: No space left"):
            write_json_output(Path("/dev/full"), {"x": 1})
        assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_dev_stdout_prints(capfd):
    assert main(["schema", "--output-path", "/dev/stdout"]) == 0
    assert json.loads(capfd.readouterr().out)["title"] == "TrainingSpec"
    write_json_output(Path("/dev/stdout"), {"printed": True})
    assert json.loads(capfd.readouterr().out) == {"printed": True}


def test_a_directory_or_a_file_as_parent_is_a_clear_error(tmp_path: Path):
    with pytest.raises(UserError, match="is a directory"):
        write_json_output(tmp_path, {})
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="a parent of it is a file"):
        write_json_output(tmp_path / "file" / "out.json", {})
    with pytest.raises(UserError, match="a parent of it is a file"):
        write_json_output(tmp_path / "file" / "out.json", {}, exclusive=True)
    assert (tmp_path / "file").read_text() == "x" and _leftovers(tmp_path) == []


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
@pytest.mark.parametrize("where", ["write", "rename"])
def test_no_temporary_file_is_left_on_any_failure(tmp_path: Path, monkeypatch, failure: BaseException, where: str):
    path = tmp_path / "out.json"
    path.write_text("previous")

    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(os, "fsync" if where == "write" else "replace", fail)
    with pytest.raises(UserError if isinstance(failure, OSError) else KeyboardInterrupt):
        write_json_output(path, {"new": 1})
    assert path.read_text() == "previous" and _leftovers(tmp_path) == []


def test_exclusive_writes_never_replace_an_existing_file(tmp_path: Path):
    first = write_json_output(tmp_path / "r.json", 1, exclusive=True)
    second = write_json_output(tmp_path / "r.json", 2, exclusive=True)
    third = write_json_output(tmp_path / "r.json", 3, exclusive=True)
    assert [p.name for p in (first, second, third)] == ["r.json", "r-2.json", "r-3.json"]
    assert [json.loads(p.read_text()) for p in (first, second, third)] == [1, 2, 3]
    assert _leftovers(tmp_path) == []


def test_two_infer_runs_with_the_default_path_keep_both_results(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("router_cli.infer.datetime", _FrozenClock)  # both runs in the same second
    from tests.cli.test_cli import _train

    assert _train() == 0
    written = []
    for prompt in ("first", "second"):
        capsys.readouterr()
        assert main(["infer", "--model", "elo_scoring/elo_smoke", "--models-to-score", "gpt-4", "--prompts", prompt]) == 0
        written.append(Path(capsys.readouterr().out.strip()))
    assert written[0] != written[1] and all(p.is_file() for p in written)
    assert sorted(p.name for p in (tmp_path / "inference_outputs").iterdir()) == sorted(p.name for p in written)


def test_schema_output_goes_through_the_writer(tmp_path: Path, monkeypatch):
    calls = []
    real = _output.write_text_output
    monkeypatch.setattr(_output, "write_text_output", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    assert main(["schema", "--output", str(tmp_path / "schema.json")]) == 0
    assert calls == [tmp_path / "schema.json"]
    assert main(["schema", "--output", str(tmp_path)]) == 2  # a directory: exit 2, nothing replaced
    assert tmp_path.is_dir()


class _FrozenClock:
    @staticmethod
    def now():
        from datetime import datetime

        return datetime(2026, 1, 1, 12, 0, 0)
