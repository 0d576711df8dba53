"""In-process hypervisors: URIs that libvirt's client library opens without a daemon (test:///default).

libvirt runs its test driver inside the client. We run virtstackd's own server in the caller's event
loop on a private socket and talk to it with the ordinary RPC client, so a `test:///default` opened here
behaves exactly like one served by a daemon — one code path, no second API.

The socket lives in a private directory under the temporary directory. It must not outlive the process:
`stop()` removes it, an atexit hook catches exits that skip `stop()`, and each directory holds a lock
file its process keeps locked, so a process killed outright (SIGKILL) leaves a directory that the next
in-process server finds unlocked and removes.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from pathlib import Path

from virtstack.virt.client.uri import ConnectURI

#: URI schemes libvirt serves in-process when the URI names no transport, host or socket
IN_PROCESS_DRIVERS = frozenset({"test"})
PREFIX = "vs-local-"
LOCK_NAME = "owner.lock"
#: a directory without its lock file is being created; one older than this was abandoned mid-creation
CREATION_GRACE = 300.0


def wants_in_process(parsed: ConnectURI) -> bool:
    return parsed.driver in IN_PROCESS_DRIVERS and parsed.transport is None and not parsed.host and (
        "socket" not in parsed.params
    )


class LocalServer:
    """virtstackd's server on a private socket inside this process; gone when `stop()` returns."""

    def __init__(self) -> None:
        from virtstack.virt.daemon.server import Daemon, DaemonConfig  # only local URIs need the server

        base = Path(tempfile.gettempdir())
        remove_stale_dirs(base)
        self._dir = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
        self._lock_fd: int | None = _hold_lock(self._dir / LOCK_NAME)
        atexit.register(self._remove_dir)
        self.socket = self._dir / "sock"
        self._daemon = Daemon(DaemonConfig(socket_path=self.socket, state_dir=self._dir / "state", enable_ro=False))

    async def start(self) -> str:
        await self._daemon.start()
        return str(self.socket)

    async def stop(self) -> None:
        try:
            await self._daemon.shutdown()
        finally:
            self._remove_dir()

    def _remove_dir(self) -> None:
        """Remove the directory (idempotent): from stop(), or at interpreter exit if stop() never ran."""
        atexit.unregister(self._remove_dir)
        shutil.rmtree(self._dir, ignore_errors=True)
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            os.close(fd)


def _hold_lock(path: Path) -> int:
    """Create and lock `path`; the lock lasts as long as this process holds the descriptor."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def remove_stale_dirs(base: Path) -> list[Path]:
    """Remove in-process server directories whose owner died without cleaning up; returns them."""
    removed: list[Path] = []
    try:
        candidates = [p for p in base.iterdir() if p.name.startswith(PREFIX) and p.is_dir() and not p.is_symlink()]
    except OSError:
        return removed
    for path in candidates:
        if _is_stale(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _is_stale(path: Path) -> bool:
    try:
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:  # still being created, unless it has been like this for a while
        with contextlib.suppress(OSError):
            return time.time() - path.stat().st_mtime > CREATION_GRACE
        return False
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # its owner is alive and holds the lock
        return False
    finally:
        os.close(fd)
    return True
