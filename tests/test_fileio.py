"""Scratch folders and temporary outputs: what a run cleans up is only what a run left."""

import fcntl
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from wrn_deploy.errors import UserError
from wrn_deploy.fileio import atomic_output, scratch_dir


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def tmpdir_env(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    return tmp_path


def test_scratch_cleanup_removes_only_folders_a_killed_run_left(tmpdir_env):
    pid = _dead_pid()
    with scratch_dir("quantize") as left:  # as a killed run would leave it: name and mark, dead process
        pass
    stale = tmpdir_env / Path(left).name.replace(f"-{os.getpid()}-", f"-{pid}-")
    stale.mkdir()
    (stale / ".wrn-deploy-scratch").touch()
    users = [tmpdir_env / f"wrn-deploy-{pid}-results", tmpdir_env / f"wrn-deploy-scratch-{pid}-notes",
             tmpdir_env / f"wrn-deploy-scratch-{pid}-quantize-abcdefgh"]  # the last one: no mark
    for folder in users:
        folder.mkdir()
        (folder / "notes.txt").write_text("mine")
    link = tmpdir_env / f"wrn-deploy-scratch-{pid}-x-abcdefgh"
    os.symlink(users[0], link)
    # A live run whose process number looks dead from here (another PID namespace): its mark is locked.
    live = tmpdir_env / f"wrn-deploy-scratch-{pid}-quantize-live1234"
    live.mkdir()
    with open(live / ".wrn-deploy-scratch", "w") as mark:
        fcntl.flock(mark, fcntl.LOCK_EX)
        with scratch_dir("calibrate") as tmp:
            assert (Path(tmp) / ".wrn-deploy-scratch").is_file()
        assert live.is_dir()
    assert not stale.exists() and not Path(tmp).exists()
    assert all((folder / "notes.txt").read_text() == "mine" for folder in users) and link.is_symlink()


def test_a_long_output_name_is_written(tmp_path):
    path = tmp_path / ("b" * 245 + ".onnx")  # 251 bytes: legal, though name + temporary suffix is not
    with atomic_output(path) as tmp:
        tmp.write_text("x")
    assert path.read_text() == "x" and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_an_output_name_that_is_not_utf8_is_refused(tmp_path):
    with pytest.raises(UserError, match="not valid UTF-8"):
        with atomic_output(tmp_path / os.fsdecode(b"bad\xff.onnx")):
            pass
    assert list(tmp_path.iterdir()) == []


def test_reports_name_far_files_by_name_only(tmp_path):
    """A report names what it mentions from its own folder while that climbs at most one level; a
    longer climb would spell out the machine's folders, so only the file's name is written."""
    from wrn_deploy.fileio import named_from

    report = tmp_path / "p" / "report.json"
    assert named_from(tmp_path / "p" / "eval" / "r.npz", report) == "eval/r.npz"
    assert named_from(tmp_path / "run" / "best.safetensors", report) == "../run/best.safetensors"
    assert named_from("/home/alice/projects/run/best.safetensors", report) == "best.safetensors"
