"""Helpers for QEMU driver tests that boot the fixture guest under real QEMU (TCG)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from virtstack.virt.drivers.base import DomainEvent, LifecycleEvent
from virtstack.virt.drivers.qemu.driver import QemuDriver
from virtstack.virt.drivers.qemu.process import pid_alive
from virtstack.virt.drivers.qemu.state import DriverState, StateLayout

BOOT_TIMEOUT = 60.0


class EventLog:
    """Collects a driver's lifecycle events; `wait_for` polls until one matches."""

    def __init__(self, driver: QemuDriver) -> None:
        self.events: list[DomainEvent] = []
        driver.add_event_listener(self.events.append)

    def of(self, name: str) -> list[tuple[LifecycleEvent, int]]:
        return [(e.event, e.detail) for e in self.events if e.domain.name == name]

    async def wait_for(self, name: str, event: LifecycleEvent, detail: int, timeout: float = BOOT_TIMEOUT) -> None:
        await until(lambda: (event, detail) in self.of(name), timeout, f"{event.name}/{detail} for {name}")


async def until(predicate: Callable[[], bool], timeout: float = BOOT_TIMEOUT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def wait_log(path: Path, text: str, count: int = 1, timeout: float = BOOT_TIMEOUT) -> str:
    """Wait until `text` appears `count` times in a console log."""

    def seen() -> bool:
        try:
            return path.read_text(errors="replace").count(text) >= count
        except FileNotFoundError:
            return False

    await until(seen, timeout, f"{text!r} x{count} in {path}")
    return path.read_text(errors="replace")


@contextlib.contextmanager
def reaping(state: Path) -> Iterator[Path]:
    """Yield a driver state directory; afterwards kill any QEMU a failed test left running there."""
    try:
        yield state
    finally:
        if (state / "run" / "qemu").is_dir():
            for record in DriverState(StateLayout.for_root(state)).load_statuses():
                if pid_alive(record.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(record.pid, signal.SIGKILL)
