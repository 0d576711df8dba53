"""The private daemons of `virtstack.testing.servers`: a real libvirtd in its own mount namespace."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from virtstack.testing.servers import start_libvirtd, unavailable_reason
from virtstack.virt.client import connect


@pytest.fixture
def awkward_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary directory whose path a shell would expand and cut. Short (the daemon's socket path
    must fit a sockaddr_un) and without spaces (libvirtd's log_outputs setting splits on them)."""
    base = Path(tempfile.mkdtemp(prefix="it's$(false)`false`&&;", dir="/tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_libvirtd_starts_under_any_path(awkward_tmp: Path) -> None:
    """The namespace's bind mounts take the paths as arguments, never through a shell string."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"real libvirtd unavailable: {reason}")
    daemon = start_libvirtd()
    try:
        assert str(daemon.root).startswith(str(awkward_tmp))
        # unshare and the namespace helper exec into libvirtd: the process we hold is the daemon itself
        assert int((daemon.root / "libvirtd.pid").read_text()) == daemon.process.pid
        conn = connect(daemon.uri())
        try:
            assert conn.lookup_by_name("test").name == "test"
        finally:
            conn.close()
    finally:
        daemon.stop()
    assert not daemon.root.exists()
    assert daemon.process.returncode is not None


def test_libvirtd_fixture_is_defined_once_for_the_session() -> None:
    """One private libvirtd serves the client and vsh tests: the fixture lives in tests/virt/conftest.py."""
    import ast

    virt_tests = Path(__file__).resolve().parents[1]

    def fixtures(path: Path) -> dict[str, ast.FunctionDef]:
        tree = ast.parse(path.read_text())
        return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}

    for sub in ("cli", "client"):
        assert "libvirtd" not in fixtures(virt_tests / sub / "conftest.py")
    shared = fixtures(virt_tests / "conftest.py")["libvirtd"]
    decorator = shared.decorator_list[0]
    assert isinstance(decorator, ast.Call)
    assert [(k.arg, ast.literal_eval(k.value)) for k in decorator.keywords] == [("scope", "session")]
