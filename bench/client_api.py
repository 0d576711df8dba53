"""Our whole stack: the virtstack Python client (`virtstack.virt.client.connect`) on its own virtstackd.

The client gets a thin adapter with libvirt-python's method names, so LibvirtTarget runs the very same
calls; set beside `libvirtd` (libvirt-python + real daemon) it is the end-to-end comparison.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.common import Results, Stats
from bench.libvirt_api import LibvirtTarget
from bench.target import Target
from bench.virtstackd import Virtstackd
from bench.virtstackd import why_unavailable as virtstackd_unavailable
from virtstack.testing.guest import Guest

CLIENT = "client+virtstackd"


class _Domain:
    """libvirt.virDomain's names over a virtstack client Domain."""

    def __init__(self, dom: Any) -> None:
        self.dom = dom

    def undefine(self) -> None:
        self.dom.undefine()

    def XMLDesc(self, flags: int = 0) -> str:  # libvirt-python spells it so
        return str(self.dom.xml_desc(flags))

    def create(self) -> None:
        self.dom.create()

    def destroy(self) -> None:
        self.dom.destroy()

    def isActive(self) -> bool:
        return bool(self.dom.is_active())


class _Connection:
    """libvirt.virConnect's names over a virtstack client Connection."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def defineXML(self, xml: str) -> _Domain:
        return _Domain(self.conn.define_xml(xml))

    def lookupByName(self, name: str) -> _Domain:
        return _Domain(self.conn.lookup_by_name(name))

    def listAllDomains(self, flags: int = 0) -> list[Any]:
        return list(self.conn.list_all_domains(flags))

    def close(self) -> None:
        self.conn.close()


def why_unavailable() -> str | None:
    return virtstackd_unavailable()


def open_target(stack: ExitStack, results: Results, guest: Guest, domain_type: str, workdir: Path) -> Target | None:
    """Start a virtstackd of its own (RSS figures stay per daemon) and connect our client to it."""
    reason = why_unavailable()
    if reason is not None:
        results.note(CLIENT, f"skipped: {reason}")
        return None
    from virtstack.virt.client import connect

    daemon = Virtstackd(Path(tempfile.mkdtemp(prefix="vs-bench-client-", dir=workdir)))
    start = time.perf_counter()
    try:
        daemon.start()
    except RuntimeError as exc:
        results.note(CLIENT, f"skipped: {exc}")
        return None
    stack.callback(daemon.stop)
    assert daemon.process is not None
    results.daemon_pids[CLIENT] = daemon.process.pid
    results.add(CLIENT, "daemon start (socket up)", Stats((time.perf_counter() - start,)))
    target = LibvirtTarget(CLIENT, _Connection(connect(daemon.uri)), daemon.process.pid, guest, domain_type, workdir)
    stack.callback(target.close)
    return target
