"""DriverTarget: our QemuDriver called in-process (no RPC), on a private state dir.

Its figures carry the libvirt-python names, so the table sets them beside the real libvirtd (which
pays RPC on top) and beside raw QEMU for booting. Each call is timed inside the event loop, so the
loop's own scheduling is not part of any figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from bench.common import DRIVER, await_marker, domain_name
from bench.target import Target
from virtstack.testing.guest import Guest

T = TypeVar("T")


def why_unavailable() -> str | None:
    """The in-process driver needs nothing beyond virtstack itself: always available."""
    return None


async def _timed(call: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await call()
    return time.perf_counter() - start


async def _cancel_pending() -> None:
    """Cancel every other task of the running loop and wait for them (asyncio.run's clean-up)."""
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


class DriverTarget(Target):
    """A QemuDriver rooted in `workdir/driver`, driven from a private event loop."""

    name = DRIVER

    def __init__(self, guest: Guest, domain_type: str, workdir: Path) -> None:
        super().__init__(guest, domain_type, workdir)
        from virtstack.virt.drivers.qemu.driver import QemuDriver

        self.loop = asyncio.new_event_loop()
        self.driver: Any = QemuDriver(root=workdir / "driver")
        self._lookup: Any = None
        self._many: list[Any] = []

    def _run(self, coro: Awaitable[T]) -> T:
        return self.loop.run_until_complete(coro)

    def warm_up(self) -> None:
        """First use parses, probes QEMU capabilities and loads state."""

        async def once() -> None:
            await self.driver.domain_undefine(await self.driver.domain_define_xml(self.xml("bench-warm-up")))

        self._run(once())

    def define_undefine(self) -> float:
        xml = self.xml("bench-define")

        async def once() -> None:
            await self.driver.domain_undefine(await self.driver.domain_define_xml(xml))

        return self._run(_timed(once))

    def lookup_setup(self) -> None:
        self._lookup = self._run(self.driver.domain_define_xml(self.xml("bench-lookup")))

    def lookup_xml(self) -> float:
        async def once() -> None:
            await self.driver.domain_get_xml_desc(await self.driver.domain_lookup_by_name("bench-lookup"))

        return self._run(_timed(once))

    def lookup_teardown(self) -> None:
        if self._lookup is not None:
            self._run(self.driver.domain_undefine(self._lookup))
            self._lookup = None

    def define_many(self, count: int) -> float:
        xmls = [self.xml(domain_name("bench-many", i)) for i in range(count)]

        async def all_of_them() -> None:
            for xml in xmls:
                self._many.append(await self.driver.domain_define_xml(xml))

        elapsed = self._run(_timed(all_of_them))
        listed = len(self._run(self.driver.connect_list_all_domains(0)))
        if listed < count:
            raise RuntimeError(f"connect_list_all_domains gave {listed} < {count} domains")
        return elapsed

    def list_all(self) -> float:
        return self._run(_timed(lambda: self.driver.connect_list_all_domains(0)))

    def undefine_many(self) -> None:
        while self._many:
            self._run(self.driver.domain_undefine(self._many.pop()))

    def boot(self, index: int, timeout: float) -> tuple[float, float]:
        return self._run(self._boot(index, timeout))

    async def _boot(self, index: int, timeout: float) -> tuple[float, float]:
        log = self.workdir / f"{DRIVER}-serial-{index}.log"
        log.unlink(missing_ok=True)
        ref = await self.driver.domain_define_xml(self.xml(f"bench-boot-{index}", serial_log=log))
        try:
            start = time.perf_counter()
            running = await self.driver.domain_create(ref)
            created = time.perf_counter() - start
            seen = await await_marker(log, self.guest.marker, timeout) - start
            await self.driver.domain_destroy(running)
            return created, seen
        finally:
            with contextlib.suppress(Exception):  # never leave a guest running behind the bench
                if await self.driver.domain_is_active(ref):
                    await self.driver.domain_destroy(ref)
            await self.driver.domain_undefine(ref)

    def close(self) -> None:
        try:
            with contextlib.suppress(Exception):
                self.undefine_many()
                self.lookup_teardown()
            self._run(self.driver.close())
            # as asyncio.run does: cancel what is still pending (e.g. monitor event readers) and wait
            self._run(_cancel_pending())
            self._run(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()
