"""Events and keepalive against the real libvirtd: lifecycle callbacks, PONGs, and a daemon that hangs."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import pytest

from virtstack.testing.servers import (
    PrivateLibvirtd,
    PrivateVirtstackd,
    start_libvirtd,
    start_virtstackd,
    unavailable_reason,
)
from virtstack.virt.client import AsyncConnection, CloseReason, VirtError, connect
from virtstack.virt.drivers.base import LifecycleEvent

try:
    import libvirt
except ImportError:  # the comparison with libvirt-python is skipped, the rest still runs
    libvirt = None

VM_XML = """<domain type='test'><name>vsevents</name><memory>65536</memory><os><type>hvm</type></os></domain>"""


def test_lifecycle_events_arrive_in_order(test_uri: str) -> None:
    conn = connect(test_uri)
    seen: list[tuple[str, int, int]] = []
    try:
        callback_id = conn.register_lifecycle(lambda dom, event, detail: seen.append((dom.name, event, detail)))
        dom = conn.define_xml(VM_XML)
        dom.create()
        dom.suspend()
        dom.resume()
        dom.destroy()
        dom.undefine()
        expected = [
            ("vsevents", LifecycleEvent.DEFINED, 0),
            ("vsevents", LifecycleEvent.STARTED, 0),
            ("vsevents", LifecycleEvent.SUSPENDED, 0),
            ("vsevents", LifecycleEvent.RESUMED, 0),
            ("vsevents", LifecycleEvent.STOPPED, 1),
            ("vsevents", LifecycleEvent.UNDEFINED, 0),
        ]
        deadline = time.monotonic() + 10
        while len(seen) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen == expected
        conn.deregister_lifecycle(callback_id)
        dom = conn.define_xml(VM_XML)
        dom.undefine()
        time.sleep(0.2)
        assert len(seen) == len(expected), "no events after deregistering"
    finally:
        conn.close()


@pytest.fixture(scope="module", params=["libvirtd", "virtstackd"])
def chatty(request: pytest.FixtureRequest) -> Iterator[PrivateLibvirtd | PrivateVirtstackd]:
    """A daemon that pings idle clients every second and drops them after ~3 s without a PONG."""
    daemon: PrivateLibvirtd | PrivateVirtstackd
    if request.param == "libvirtd":
        reason = unavailable_reason()
        if reason:
            pytest.skip(f"real libvirtd unavailable: {reason}")
        daemon = start_libvirtd(keepalive=(1, 2))
    else:
        daemon = start_virtstackd(extra_args=("--keepalive-interval", "1", "--keepalive-count", "2"))
    try:
        yield daemon
    finally:
        daemon.stop()


def test_idle_connection_survives_daemon_keepalive(chatty: PrivateLibvirtd | PrivateVirtstackd) -> None:
    # no pinger of our own: the daemon pings (we asked for its keepalive feature) and drops us without PONGs
    conn = connect(chatty.uri(), keepalive=None)
    try:
        time.sleep(5.0)
        assert conn.is_alive()
        assert conn.get_hostname()
    finally:
        conn.close()


def test_hung_daemon_is_detected_by_client_keepalive(chatty: PrivateLibvirtd | PrivateVirtstackd) -> None:
    async def scenario() -> tuple[float, VirtError]:
        conn = await AsyncConnection.open(chatty.uri(), keepalive=(0.3, 2))
        os.kill(chatty.process.pid, signal.SIGSTOP)
        try:
            start = time.monotonic()
            while conn.is_alive and time.monotonic() - start < 10:
                await asyncio.sleep(0.05)
            elapsed = time.monotonic() - start
            with pytest.raises(VirtError) as err:
                await conn.get_hostname()
            return elapsed, err.value
        finally:
            os.kill(chatty.process.pid, signal.SIGCONT)
            await conn.close()

    elapsed, err = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert elapsed < 3.0, f"keepalive took {elapsed:.1f}s to notice a dead daemon"
    assert err.code in (1, 38)


def test_daemon_death_fails_calls_and_reports_eof() -> None:
    """A daemon killed under an open connection: calls fail like libvirt's, the close callback says EOF."""
    daemon = start_virtstackd()
    try:
        conn = connect(daemon.uri())
        real = libvirt.open(daemon.uri()) if libvirt is not None else None
        reasons: list[CloseReason] = []
        conn.on_close(reasons.append)
        os.kill(daemon.process.pid, signal.SIGKILL)
        daemon.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while conn.is_alive() and time.monotonic() < deadline:  # the reader sees EOF on its own
            time.sleep(0.02)
        assert reasons == [CloseReason.EOF]
        with pytest.raises(VirtError) as ours:
            conn.get_hostname()
        # what libvirt's client says once its event loop has seen the EOF (virNetClientSendInternal)
        assert (ours.value.code, ours.value.domain, ours.value.message) == (
            1, 7, "internal error: client socket is closed"
        )
        if real is not None:  # libvirt-python without an event loop finds out during the call: also VIR_FROM_RPC
            with pytest.raises(libvirt.libvirtError) as theirs:
                real.getHostname()
            assert theirs.value.get_error_domain() == 7
        conn.close()
    finally:
        daemon.stop()
