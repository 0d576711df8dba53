"""Our whole stack: the virtstack Python client (`virtstack.virt.client.connect`) on its own virtstackd.

The client gets a thin adapter with libvirt-python's method names, so LibvirtTarget runs the very same
calls; set beside `libvirtd` (libvirt-python + real daemon) it is the end-to-end comparison.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.common import Results
from bench.libvirt_api import LibvirtTarget
from bench.target import Target
from bench.virtstackd import start_daemon
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
    """A virtstackd of its own driven by our client library; None, with a note, if it can't run."""
    from virtstack.virt.client import connect

    daemon = start_daemon(stack, results, CLIENT, workdir)
    if daemon is None:
        return None
    assert daemon.process is not None
    target = LibvirtTarget(CLIENT, _Connection(connect(daemon.uri)), daemon.process.pid, guest, domain_type, workdir)
    stack.callback(target.close)
    return target
