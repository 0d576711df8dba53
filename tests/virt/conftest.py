"""Fixtures shared by the virt tests: one private real libvirtd 9.0 (the oracle) for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from virtstack.testing.servers import PrivateLibvirtd, start_libvirtd, unavailable_reason


@pytest.fixture(scope="session")
def libvirtd() -> Iterator[PrivateLibvirtd]:
    """A real libvirtd 9.0 in its own mount namespace; its test:///default needs no QEMU.

    Session-scoped: the client and vsh tests share it (starting one costs about a second).
    """
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"real libvirtd unavailable: {reason}")
    daemon = start_libvirtd()
    try:
        yield daemon
    finally:
        daemon.stop()
