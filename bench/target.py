"""Target: one thing being measured (raw QEMU, a libvirt daemon, our driver) behind the same timed calls.

Every timed call measures one operation and returns its seconds, so the comparison runner can
interleave targets call by call: on a shared, noisy machine a slow minute then hits every target alike
instead of whichever happened to run during it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from virtstack.testing.guest import Guest, domain_xml


class Unsupported(Exception):
    """This target has no such figure (raw QEMU has no define); the runner skips it silently."""


class Target:
    """Base of all targets: the figures a target does not override are Unsupported."""

    name = "target"

    def __init__(self, guest: Guest, domain_type: str, workdir: Path) -> None:
        self.guest = guest
        self.domain_type = domain_type
        self.workdir = workdir

    @property
    def daemon_pid(self) -> int | None:
        """The managing daemon's pid for RSS figures; None when there is no separate daemon."""
        return None

    def xml(self, name: str, serial_log: Path | None = None) -> str:
        """The fixture domain, identical for every target but for name, uuid and log path."""
        return domain_xml(name, self.guest, domain_type=self.domain_type, uuid=str(uuid.uuid4()),
                          serial_log=serial_log)  # fmt: skip

    def warm_up(self) -> None:
        """Untimed first use (caches, capability probes) before anything is measured."""

    def define_undefine(self) -> float:
        raise Unsupported

    def lookup_setup(self) -> None:
        raise Unsupported

    def lookup_xml(self) -> float:
        """Look the domain 'bench-lookup' up by name and fetch its XML."""
        raise Unsupported

    def lookup_teardown(self) -> None:
        raise Unsupported

    def define_many(self, count: int) -> float:
        """Define `count` domains; seconds for all of them."""
        raise Unsupported

    def list_all(self) -> float:
        raise Unsupported

    def undefine_many(self) -> None:
        raise Unsupported

    def boot(self, index: int, timeout: float) -> tuple[float, float]:
        """Start the guest, wait for its marker, stop it: (start call returned, marker seen) seconds."""
        raise Unsupported

    def close(self) -> None:
        """Release everything the target started (daemons, guests, temp dirs)."""
