"""The daemons the bench starts: a private real libvirtd (own mount namespace) and virtstackd, fully stopped."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from bench.libvirtd import QEMU_CONF, PrivateLibvirtd, why_unavailable
from bench.virtstackd import Virtstackd
from bench.virtstackd import why_unavailable as virtstackd_unavailable

from virtstack.testing.guest import Guest, domain_xml

needs_libvirtd = pytest.mark.skipif(
    why_unavailable() is not None, reason=f"private libvirtd cannot run: {why_unavailable()}"
)


@needs_libvirtd
def test_private_daemon_answers_and_sees_only_its_own_paths(tmp_path: Path) -> None:
    import libvirt

    daemon = PrivateLibvirtd(tmp_path / "d")
    with daemon:
        assert daemon.socket.is_socket() and str(daemon.socket).startswith(str(tmp_path))
        assert os.readlink(f"/proc/{daemon.pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
        assert Path(f"/proc/{daemon.pid}/comm").read_text().strip() == "libvirtd"
        # /proc/PID/root resolves paths in the daemon's mount namespace: it sees our dirs there ...
        seen = Path(f"/proc/{daemon.pid}/root")
        assert (seen / "etc/libvirt/qemu.conf").read_text() == QEMU_CONF
        assert os.stat(seen / "run").st_ino == os.stat(tmp_path / "d" / "run").st_ino
        assert os.stat(seen / "var/lib/libvirt").st_ino == os.stat(tmp_path / "d" / "lib").st_ino
        # ... while the host's files are not ours
        host_conf = Path("/etc/libvirt/qemu.conf")
        assert not host_conf.exists() or host_conf.read_text() != QEMU_CONF
        conn = libvirt.open(daemon.uri)
        try:
            assert conn.getType() == "QEMU"
            assert conn.listAllDomains(0) == []
        finally:
            conn.close()
        pid = daemon.pid
    assert not Path(f"/proc/{pid}").exists()
    assert (tmp_path / "d").exists()  # a caller's workdir is the caller's to remove


@needs_libvirtd
@pytest.mark.qemu
def test_stop_also_kills_a_guest_left_running(tmp_path: Path, guest: Guest) -> None:
    import libvirt

    daemon = PrivateLibvirtd(tmp_path / "d")
    with daemon:
        conn = libvirt.open(daemon.uri)
        try:
            dom = conn.createXML(domain_xml("left-running", guest), 0)
            assert dom.isActive()
        finally:
            conn.close()
        qemu = daemon.qemu_pids()
        assert len(qemu) == 1
    deadline = time.monotonic() + 10
    while Path(f"/proc/{qemu[0]}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{qemu[0]}").exists()


@pytest.mark.qemu
@pytest.mark.skipif(virtstackd_unavailable() is not None, reason=f"virtstackd: {virtstackd_unavailable()}")
def test_virtstackd_stop_also_kills_a_guest_left_running(tmp_path: Path, guest: Guest) -> None:
    import libvirt

    daemon = Virtstackd(tmp_path)
    daemon.start()
    try:
        conn = libvirt.open(daemon.uri)
        try:
            dom = conn.createXML(domain_xml("left-running", guest), 0)
            assert dom.isActive()
        finally:
            conn.close()
        qemu = daemon.qemu_pids()
        assert len(qemu) == 1
    finally:
        daemon.stop()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{qemu[0]}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{qemu[0]}").exists()
    assert daemon.process is not None and daemon.process.poll() is not None
