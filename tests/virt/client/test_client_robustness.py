"""Client robustness: unencodable arguments are libvirt errors, in-process servers leave no files behind."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from virtstack.virt.client import VirtError, connect, local, transport
from virtstack.virt.errors import ErrorCode
from virtstack.virt.rpc import protocol


@pytest.mark.parametrize("name", ["\udcff", "t\udce9st"])
def test_unencodable_string_is_a_libvirt_error(test_uri: str, name: str) -> None:
    """A str holding surrogate escapes (argv bytes that are not UTF-8) cannot travel as XDR UTF-8."""
    conn = connect(test_uri)
    try:
        with pytest.raises(VirtError) as info:
            conn.lookup_by_name(name)
        assert info.value.code == ErrorCode.INVALID_ARG
        assert "not valid UTF-8" in info.value.message
        assert conn.lookup_by_name("test").name == "test"  # the connection is still fine
    finally:
        conn.close()


def test_keepalive_numbers_come_from_the_protocol_table() -> None:
    """transport.py must not carry its own copy of procedure numbers the generated table provides."""
    tree = ast.parse(Path(transport.__file__).read_text())
    literals = [
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, int)
        for target in node.targets
        if isinstance(target, ast.Name)
    ]
    assert literals == []
    assert (
        protocol.KEEPALIVE["PING"].number,
        protocol.KEEPALIVE["PONG"].number,
    ) == (transport.KEEPALIVE_PING, transport.KEEPALIVE_PONG)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process's and its children's temporary directory, so only our own server directories show."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    return tmp_path


def _local_dirs(base: Path) -> list[Path]:
    return sorted(base.glob(f"{local.PREFIX}*"))


def _hold_in_process_connection(base: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """A child with an open in-process test:///default connection, and its server directory."""
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom virtstack.virt.client import connect\nc = connect('test:///default')\n"
         "print(c.get_uri(), flush=True)\ntime.sleep(60)\n"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"test:///default"
        dirs = _local_dirs(base)
        assert len(dirs) == 1
    except BaseException:
        child.kill()
        child.wait()
        raise
    return child, dirs[0]


def test_closing_removes_the_server_directory(private_tmp: Path) -> None:
    conn = connect("test:///default")
    assert len(_local_dirs(private_tmp)) == 1
    conn.close()
    assert _local_dirs(private_tmp) == []


def test_a_killed_owners_directory_is_removed_by_the_next_server(private_tmp: Path) -> None:
    child, left = _hold_in_process_connection(private_tmp)
    other = connect("test:///default")  # the child is alive: its directory must survive this sweep
    try:
        assert left.is_dir()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        assert left.is_dir()  # SIGKILL: nothing in the child could clean up
        again = connect("test:///default")
        again.close()
        assert not left.exists()
        assert other.lookup_by_name("test").name == "test"  # a live owner's server is untouched
        assert len(_local_dirs(private_tmp)) == 1
    finally:
        other.close()
        if child.poll() is None:
            child.kill()
            child.wait()


def test_directory_being_created_is_left_alone(private_tmp: Path) -> None:
    """A directory without its lock file yet belongs to a server starting up, unless it is old."""
    fresh = private_tmp / f"{local.PREFIX}fresh"
    old = private_tmp / f"{local.PREFIX}old"
    fresh.mkdir()
    old.mkdir()
    past = time.time() - local.CREATION_GRACE - 10
    os.utime(old, (past, past))
    assert local.remove_stale_dirs(private_tmp) == [old]
    assert fresh.is_dir() and not old.exists()
