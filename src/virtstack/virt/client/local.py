"""In-process hypervisors: URIs that libvirt's client library opens without a daemon (test:///default).

libvirt runs its test driver inside the client. We run virtstackd's own server in the caller's event
loop on a private socket and talk to it with the ordinary RPC client, so a `test:///default` opened here
behaves exactly like one served by a daemon — one code path, no second API.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from virtstack.virt.client.uri import ConnectURI

#: URI schemes libvirt serves in-process when the URI names no transport, host or socket
IN_PROCESS_DRIVERS = frozenset({"test"})


def wants_in_process(parsed: ConnectURI) -> bool:
    return parsed.driver in IN_PROCESS_DRIVERS and parsed.transport is None and not parsed.host and (
        "socket" not in parsed.params
    )


class LocalServer:
    """virtstackd's server on a private socket inside this process; gone when `stop()` returns."""

    def __init__(self) -> None:
        from virtstack.virt.daemon.server import Daemon, DaemonConfig  # only local URIs need the server

        self._dir = Path(tempfile.mkdtemp(prefix="vs-local-"))
        self.socket = self._dir / "sock"
        self._daemon = Daemon(DaemonConfig(socket_path=self.socket, state_dir=self._dir / "state", enable_ro=False))

    async def start(self) -> str:
        await self._daemon.start()
        return str(self.socket)

    async def stop(self) -> None:
        try:
            await self._daemon.shutdown()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
