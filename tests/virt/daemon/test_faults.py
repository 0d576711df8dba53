"""Faults no real driver produces on demand: a driver that crashes or returns garbage gets an error reply,
and the daemon and the connection carry on."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.virt.daemon.test_protocol_edges import RawClient, _error

from virtstack.virt.daemon.server import Daemon, DaemonConfig
from virtstack.virt.drivers.base import DomainInfo, DomainRef, HypervisorDriver
from virtstack.virt.drivers.test import TestDriver
from virtstack.virt.errors import ErrorCode, ErrorDomain
from virtstack.virt.rpc.message import MessageStatus
from virtstack.virt.rpc.protocol import REMOTE


class BrokenDriver(TestDriver):
    """test:///default with two bugs planted: one method raises, one returns an unencodable value."""

    async def domain_get_info(self, dom: DomainRef) -> DomainInfo:
        raise RuntimeError("planted bug")

    async def domain_get_max_memory(self, dom: DomainRef) -> int:
        return -5  # the wire type is unsigned hyper


def _factory(uri: str, state_dir: Path) -> HypervisorDriver:
    return BrokenDriver(uri)


@pytest.fixture
def in_process_daemon(tmp_path: Path) -> Iterator[Path]:
    loop = asyncio.new_event_loop()
    daemon = Daemon(DaemonConfig(socket_path=tmp_path / "sock", state_dir=tmp_path / "state"), _factory)
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(daemon.start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(daemon.shutdown())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(30)
    yield tmp_path / "sock"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)
    loop.close()


def test_driver_bugs_become_internal_errors(in_process_daemon: Path) -> None:
    c = RawClient(in_process_daemon)
    try:
        c.open()
        dom = REMOTE["DOMAIN_LOOKUP_BY_NAME"].decode_ret(
            c.call("DOMAIN_LOOKUP_BY_NAME", {"name": "test"}).payload
        )
        code, domain, message = _error(c.call("DOMAIN_GET_INFO", dom))
        assert (code, domain) == (ErrorCode.INTERNAL_ERROR, ErrorDomain.RPC)
        assert message == "internal error: RuntimeError: planted bug"
        code, _, _ = _error(c.call("DOMAIN_GET_MAX_MEMORY", dom))
        assert code == ErrorCode.INTERNAL_ERROR
        assert c.call("DOMAIN_GET_STATE", {**dom, "flags": 0}).header.status == MessageStatus.OK
    finally:
        c.close()
