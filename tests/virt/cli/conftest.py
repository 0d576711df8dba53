"""vsh fixtures: the servers both virsh and vsh talk to — a private real libvirtd and our virtstackd.

The `*_uris` fixtures give (URI for virsh, URI for vsh) reaching the same initial test:///default
state: libvirtd rebuilds test:///default when its last client leaves, so one daemon serves both runs;
virtstackd keeps it for its lifetime, so state-changing comparisons get two fresh daemons.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from virtstack.testing.servers import (
    PrivateLibvirtd,
    PrivateVirtstackd,
    start_virtstackd,
)

#: where test:///default lives: a real libvirtd, our virtstackd, or inside each tool (no daemon: virsh
#: runs libvirt's test driver in-process, vsh runs virtstackd's server in-process)
SERVERS = ["libvirtd", "virtstackd", "in-process"]
IN_PROCESS = "test:///default"


@pytest.fixture
def test_uri(libvirtd: PrivateLibvirtd) -> str:
    """test+unix:///default?socket=… of the private libvirtd."""
    return libvirtd.uri("test:///default")


@pytest.fixture(scope="module")
def shared_virtstackd() -> Iterator[PrivateVirtstackd]:
    daemon = start_virtstackd()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(params=SERVERS)
def shared_uris(request: pytest.FixtureRequest) -> tuple[str, str]:
    """Both tools on one daemon: for commands that leave test:///default as they found it."""
    if request.param == "libvirtd":
        uri = request.getfixturevalue("test_uri")
    elif request.param == "virtstackd":
        uri = request.getfixturevalue("shared_virtstackd").uri()
    else:
        uri = IN_PROCESS
    return uri, uri


@pytest.fixture(params=SERVERS)
def fresh_uris(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(virsh URI, vsh URI) with identical fresh test:///default state, for state-changing batches."""
    if request.param in ("libvirtd", "in-process"):  # both start every client from a fresh state
        uri = request.getfixturevalue("test_uri") if request.param == "libvirtd" else IN_PROCESS
        yield uri, uri
        return
    a, b = start_virtstackd(), start_virtstackd()
    try:
        yield a.uri(), b.uri()
    finally:
        a.stop()
        b.stop()


@pytest.fixture(params=["libvirtd", "virtstackd"])
def qemu_uri(request: pytest.FixtureRequest) -> Iterator[str]:
    """qemu:///system of a private real libvirtd, or of a private virtstackd (real QEMU guests)."""
    if request.param == "libvirtd":
        daemon: PrivateLibvirtd = request.getfixturevalue("libvirtd")
        yield daemon.uri("qemu:///system")
        return
    ours = start_virtstackd(guests=True)
    try:
        yield ours.uri("qemu:///system")
    finally:
        ours.stop()

