"""Client fixtures: the servers the client is tested against — a private real libvirtd and our virtstackd.

Each is skipped with the reason when it cannot run here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from virtstack.virt.client.testservers import (
    PrivateLibvirtd,
    PrivateVirtstackd,
    start_libvirtd,
    start_virtstackd,
    unavailable_reason,
)


@pytest.fixture(scope="session")
def libvirtd() -> Iterator[PrivateLibvirtd]:
    """A real libvirtd 9.0 in its own mount namespace; its test:///default needs no QEMU."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"real libvirtd unavailable: {reason}")
    daemon = start_libvirtd()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def virtstackd() -> Iterator[PrivateVirtstackd]:
    daemon = start_virtstackd()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(params=["libvirtd", "virtstackd", "in-process"])
def test_uri(request: pytest.FixtureRequest) -> str:
    """test:///default of the server under test: in a real libvirtd, in virtstackd, or in-process."""
    if request.param == "in-process":
        return "test:///default"
    server: PrivateLibvirtd | PrivateVirtstackd = request.getfixturevalue(request.param)
    return server.uri("test:///default")

