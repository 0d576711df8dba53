"""LibvirtTarget: figures through libvirt-python, identical for the real libvirtd and for virtstackd."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from bench.common import domain_name, wait_marker
from bench.target import Target
from virtstack.testing.guest import Guest


def libvirt_module() -> Any:
    """libvirt-python, with its default error printer silenced (errors still arrive as exceptions)."""
    import libvirt

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


def open_libvirt(name: str, uri: str, pid: int | None, guest: Guest, domain_type: str, workdir: Path) -> LibvirtTarget:
    """A target on a libvirt-python connection to `uri`."""
    return LibvirtTarget(name, libvirt_module().open(uri), pid, guest, domain_type, workdir)


class LibvirtTarget(Target):
    """One connection with libvirt-python's method names, to a daemon whose pid is known (for RSS)."""

    def __init__(self, name: str, conn: Any, pid: int | None, guest: Guest, domain_type: str, workdir: Path) -> None:
        super().__init__(guest, domain_type, workdir)
        self.name = name
        self.conn = conn  # libvirt.virConnect (untyped), or anything with its method names
        self._pid = pid
        self._lookup: Any = None
        self._many: list[Any] = []

    @property
    def daemon_pid(self) -> int | None:
        return self._pid

    def warm_up(self) -> None:
        """libvirtd loads its QEMU capabilities on first use (seconds); do that before timing."""
        self.conn.listAllDomains(0)
        self.conn.defineXML(self.xml("bench-warm-up")).undefine()

    def define_undefine(self) -> float:
        xml = self.xml("bench-define")
        start = time.perf_counter()
        self.conn.defineXML(xml).undefine()
        return time.perf_counter() - start

    def lookup_setup(self) -> None:
        self._lookup = self.conn.defineXML(self.xml("bench-lookup"))

    def lookup_xml(self) -> float:
        start = time.perf_counter()
        self.conn.lookupByName("bench-lookup").XMLDesc(0)
        return time.perf_counter() - start

    def lookup_teardown(self) -> None:
        if self._lookup is not None:
            self._lookup.undefine()
            self._lookup = None

    def define_many(self, count: int) -> float:
        xmls = [self.xml(domain_name("bench-many", i)) for i in range(count)]
        start = time.perf_counter()
        for xml in xmls:
            self._many.append(self.conn.defineXML(xml))
        elapsed = time.perf_counter() - start
        listed = len(self.conn.listAllDomains(0))
        if listed < count:
            raise RuntimeError(f"listAllDomains returned {listed} < {count} domains")
        return elapsed

    def list_all(self) -> float:
        start = time.perf_counter()
        self.conn.listAllDomains(0)
        return time.perf_counter() - start

    def undefine_many(self) -> None:
        while self._many:
            self._many.pop().undefine()

    def boot(self, index: int, timeout: float) -> tuple[float, float]:
        log = self.workdir / f"{self.name}-serial-{index}.log"
        log.unlink(missing_ok=True)
        dom = self.conn.defineXML(self.xml(f"bench-boot-{index}", serial_log=log))
        try:
            start = time.perf_counter()
            dom.create()
            created = time.perf_counter() - start
            seen = wait_marker(log, self.guest.marker, timeout) - start
            dom.destroy()
            return created, seen
        finally:
            with contextlib.suppress(Exception):  # never leave a guest running behind the bench
                if dom.isActive():
                    dom.destroy()
            dom.undefine()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.undefine_many()
            self.lookup_teardown()
        with contextlib.suppress(Exception):
            self.conn.close()
