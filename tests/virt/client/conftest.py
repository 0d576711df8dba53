"""Client fixtures: the servers the client is tested against — a private real libvirtd and our virtstackd.

Each is skipped with the reason when it cannot run here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from virtstack.testing.servers import (
    PrivateLibvirtd,
    PrivateVirtstackd,
    start_virtstackd,
)


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

