"""Hypervisor drivers behind one interface (base.py), chosen by the URI a client opens.

The table is explicit (no scanning): URI scheme -> factory. Remote transports (`qemu+ssh://...`) are the
client's business, not a local driver's, so they are refused here like libvirt's daemon refuses them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from virtstack.virt.drivers.base import HypervisorDriver
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError

DriverFactory = Callable[[str, Path | None], HypervisorDriver]


def _open_qemu(uri: str, state_dir: Path | None) -> HypervisorDriver:
    from virtstack.virt.drivers.qemu.driver import QemuDriver

    path = urlsplit(uri).path
    if path == "/system":
        return QemuDriver(state_dir, uri=uri)
    if path == "/session":
        root = state_dir if state_dir is not None else Path.home() / ".local" / "share" / "virtstack"
        return QemuDriver(root, uri=uri)
    raise VirtError(
        ErrorCode.INTERNAL_ERROR, f"unexpected QEMU URI path '{path}', try qemu:///system", domain=ErrorDomain.QEMU
    )


def _open_test(uri: str, state_dir: Path | None) -> HypervisorDriver:
    from virtstack.virt.drivers.test import TestDriver

    if urlsplit(uri).path != "/default":  # custom test:///file.xml setups are not implemented
        raise VirtError(ErrorCode.NO_CONNECT, uri)
    return TestDriver(uri)


#: URI scheme -> factory; the daemon and vsh (without a daemon) open drivers only through this table
DRIVERS: dict[str, DriverFactory] = {
    "qemu": _open_qemu,
    "test": _open_test,
}


def open_driver(uri: str, state_dir: Path | None = None) -> HypervisorDriver:
    """The local driver serving `uri`; `state_dir` roots a private instance (None: system paths)."""
    parts = urlsplit(uri)
    factory = DRIVERS.get(parts.scheme)
    if factory is None or parts.netloc:
        raise VirtError(ErrorCode.NO_CONNECT, uri)
    return factory(uri, state_dir)
