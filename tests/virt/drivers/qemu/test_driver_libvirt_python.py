"""The QEMU driver behind virtstackd, driven by the real libvirt-python: lifecycle, reasons, events, errors."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from qemu_driver_helpers import reaping

from virtstack.testing.guest import Guest, domain_xml

libvirt = pytest.importorskip("libvirt")

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(180)]


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


@contextlib.contextmanager
def virtstackd(root: Path) -> Iterator[str]:
    """A private virtstackd (its qemu driver on root/state); yields the URI real clients open."""
    sock = root / "sock"
    log = root / "virtstackd.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "virtstack.virt.daemon", "--socket", str(sock), "--no-ro-socket",
             "--state-dir", str(root / "state")],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait(lambda: sock.exists() or proc.poll() is not None, "daemon socket", 30)
        assert proc.poll() is None, log.read_text(errors="replace")
        yield f"qemu+unix:///system?socket={sock}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        sock.unlink(missing_ok=True)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[str]:
    with reaping(tmp_path / "state"), virtstackd(tmp_path) as uri:  # guests outlive daemons by design
        yield uri


@pytest.fixture(scope="module")
def event_loop_thread() -> None:
    """libvirt-python delivers events only with its default event loop running in a thread."""
    libvirt.virEventRegisterDefaultImpl()

    def run() -> None:
        while True:
            libvirt.virEventRunDefaultImpl()

    threading.Thread(target=run, daemon=True).start()


def test_libvirt_python_drives_a_guest(daemon: str, guest: Guest, tmp_path: Path, event_loop_thread: None) -> None:
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    conn = libvirt.open(daemon)
    events: list[tuple[str, int, int]] = []
    conn.domainEventRegisterAny(
        None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lambda _c, d, e, det, _o: events.append((d.name(), e, det)), None
    )
    log = tmp_path / "serial.log"
    try:
        dom = conn.defineXML(domain_xml("lv", guest, serial_log=log))
        dom.create()
        assert dom.ID() == conn.lookupByName("lv").ID() == 1
        assert dom.state() == [libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_RUNNING_BOOTED]
        _wait(lambda: log.exists() and guest.marker in log.read_text(errors="replace"), "guest marker")
        state, max_kib, mem_kib, vcpus, cpu_ns = dom.info()
        assert (state, max_kib, mem_kib, vcpus) == (libvirt.VIR_DOMAIN_RUNNING, 131072, 131072, 1) and cpu_ns > 0
        dom.suspend()
        assert dom.state() == [libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER]
        dom.resume()
        dom.shutdown()
        _wait(lambda: dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF, "guest poweroff")
        assert dom.state() == [libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN]
        assert "VIRTSTACK-GUEST-POWEROFF" in log.read_text(errors="replace")
        with pytest.raises(libvirt.libvirtError) as err:
            dom.destroy()
        assert (err.value.get_error_code(), err.value.get_error_domain(), str(err.value)) == (
            libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_FROM_DOMAIN,  # virDomainObjCheckActive, as libvirtd
            "Requested operation is not valid: domain is not running",
        )  # fmt: skip
        with pytest.raises(libvirt.libvirtError) as err:
            conn.lookupByName("nope")
        assert (err.value.get_error_code(), str(err.value)) == (
            libvirt.VIR_ERR_NO_DOMAIN, "Domain not found: no domain with matching name 'nope'",
        )  # fmt: skip
        assert conn.getType() == "QEMU" and conn.getVersion() >= 7_000_000
        dom.undefine()
        _wait(lambda: len(events) >= 8, "lifecycle events", 10)
        E = libvirt
        assert events == [
            ("lv", E.VIR_DOMAIN_EVENT_DEFINED, E.VIR_DOMAIN_EVENT_DEFINED_ADDED),
            ("lv", E.VIR_DOMAIN_EVENT_RESUMED, E.VIR_DOMAIN_EVENT_RESUMED_UNPAUSED),  # libvirtd sends it too
            ("lv", E.VIR_DOMAIN_EVENT_STARTED, E.VIR_DOMAIN_EVENT_STARTED_BOOTED),
            ("lv", E.VIR_DOMAIN_EVENT_SUSPENDED, E.VIR_DOMAIN_EVENT_SUSPENDED_PAUSED),
            ("lv", E.VIR_DOMAIN_EVENT_RESUMED, E.VIR_DOMAIN_EVENT_RESUMED_UNPAUSED),
            ("lv", E.VIR_DOMAIN_EVENT_SHUTDOWN, E.VIR_DOMAIN_EVENT_SHUTDOWN_GUEST),
            ("lv", E.VIR_DOMAIN_EVENT_STOPPED, E.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN),
            ("lv", E.VIR_DOMAIN_EVENT_UNDEFINED, E.VIR_DOMAIN_EVENT_UNDEFINED_REMOVED),
        ]
    finally:
        conn.close()


def test_guests_survive_a_daemon_restart(guest: Guest, tmp_path: Path) -> None:
    """virtstackd stops with a guest running and one paused; the next virtstackd on the same state
    directory serves both with the same ids and states, and can stop them."""
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    logs = {n: tmp_path / f"{n}.log" for n in ("r1", "p1")}
    with reaping(tmp_path / "state"):
        with virtstackd(tmp_path) as uri:
            conn = libvirt.open(uri)
            doms = {n: conn.createXML(domain_xml(n, guest, serial_log=logs[n]), 0) for n in logs}
            for n, path in logs.items():
                _wait(lambda p=path: p.exists() and guest.marker in p.read_text(errors="replace"), n)
            doms["p1"].suspend()
            before = {n: (d.ID(), d.state()) for n, d in doms.items()}
            conn.close()
        with virtstackd(tmp_path) as uri:
            conn = libvirt.open(uri)
            after = {n: (conn.lookupByName(n).ID(), conn.lookupByName(n).state()) for n in logs}
            assert after == before
            assert before["p1"][1] == [libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PAUSED_USER]
            for n in logs:
                conn.lookupByName(n).destroy()
            assert conn.listAllDomains() == []  # transient: gone once stopped
            conn.close()
