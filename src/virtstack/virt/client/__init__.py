"""The Python API over the libvirt RPC protocol: `connect(uri)` to virtstackd or a real libvirtd.

`connect()` gives the blocking API (`Connection`, `Domain`); `connect_async()` the asyncio one
(`AsyncConnection`, `AsyncDomain`). Errors are `virtstack.virt.errors.VirtError` with libvirt's code,
domain and message, exactly as the daemon sent them.
"""

from __future__ import annotations

from virtstack.virt.client.connection import (
    KEEPALIVE,
    AsyncConnection,
    AsyncDomain,
    SecurityLabel,
    SecurityModel,
)
from virtstack.virt.client.sync import Connection, Console, Domain
from virtstack.virt.client.transport import CloseReason
from virtstack.virt.client.uri import ConnectURI, parse_uri
from virtstack.virt.errors import VirtError

__all__ = [
    "AsyncConnection",
    "AsyncDomain",
    "CloseReason",
    "ConnectURI",
    "Connection",
    "Console",
    "Domain",
    "SecurityLabel",
    "SecurityModel",
    "VirtError",
    "connect",
    "connect_async",
    "parse_uri",
]


def connect(
    uri: str | None = None, *, readonly: bool = False, keepalive: tuple[float, int] | None = KEEPALIVE
) -> Connection:
    """Open a blocking connection (`None` = LIBVIRT_DEFAULT_URI, else qemu:///system)."""
    return Connection.open(uri, readonly=readonly, keepalive=keepalive)


async def connect_async(
    uri: str | None = None, *, readonly: bool = False, keepalive: tuple[float, int] | None = KEEPALIVE
) -> AsyncConnection:
    """Open an asyncio connection; the caller's loop runs its reader and keepalive."""
    return await AsyncConnection.open(uri, readonly=readonly, keepalive=keepalive)
