"""virtstackd's listeners and shared state: unix sockets (read-write and read-only), TCP, TLS; drivers by URI.

Drivers are shared by every connection that opens the same URI (like libvirtd's single QEMU driver),
created on first open through `virtstack.virt.drivers.open_driver(uri, state_dir)` when that table
exists, else from the built-in table here (test:///default).
"""

from __future__ import annotations

import asyncio
import grp
import inspect
import ipaddress
import logging
import os
import ssl
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from virtstack.common.log import kv
from virtstack.virt.daemon.connection import Connection
from virtstack.virt.drivers import open_driver
from virtstack.virt.drivers.base import HypervisorDriver
from virtstack.virt.rpc.message import MAX_PACKET

log = logging.getLogger(__name__)

DEFAULT_URI = "qemu:///system"


@dataclass
class DaemonConfig:
    """Everything virtstackd can be told (the subset of libvirtd.conf it honours)."""

    socket_path: Path
    state_dir: Path
    ro_socket_path: Path | None = None  # default: socket_path + "-ro"; set enable_ro=False for none
    enable_ro: bool = True
    socket_mode: int = 0o600
    ro_socket_mode: int = 0o666
    socket_group: str | None = None
    tcp_listen: tuple[str, int] | None = None  # plain TCP: loopback only, for tests
    tls_listen: tuple[str, int] | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    max_clients: int = 5000
    max_requests: int = 5
    max_packet: int = MAX_PACKET
    keepalive_interval: float = 5.0
    keepalive_count: int = 5

    @property
    def ro_path(self) -> Path | None:
        if not self.enable_ro:
            return None
        return self.ro_socket_path or Path(str(self.socket_path) + "-ro")


DriverFactory = Callable[[str, Path], "HypervisorDriver | Awaitable[HypervisorDriver]"]


def driver_key(uri: str) -> str:
    """One driver per scheme and path: query parameters (which libvirt's drivers ignore when unknown)
    must not open a second driver on the same state directory."""
    parts = urlsplit(uri)
    return f"{parts.scheme.lower()}://{parts.netloc}{parts.path}"


class Daemon:
    """Owns the listeners, the live connections and the drivers opened so far."""

    def __init__(self, config: DaemonConfig, driver_factory: DriverFactory | None = None) -> None:
        self.config = config
        self.driver_factory = driver_factory or open_driver
        self.drivers: dict[str, HypervisorDriver] = {}
        self._driver_lock = asyncio.Lock()
        self.connections: set[Connection] = set()
        self._servers: list[asyncio.AbstractServer] = []
        self._stopped = asyncio.Event()

    # -- drivers ------------------------------------------------------------------------------------
    async def open_driver(self, uri: str) -> HypervisorDriver:
        """The shared driver for `uri` ("" means the default, qemu:///system)."""
        key = driver_key(uri or DEFAULT_URI)
        async with self._driver_lock:
            driver = self.drivers.get(key)
            if driver is None:
                self.config.state_dir.mkdir(parents=True, exist_ok=True)
                made: Any = self.driver_factory(key, self.config.state_dir)
                driver = await made if inspect.isawaitable(made) else made
                self.drivers[key] = driver
            return driver

    # -- listeners ----------------------------------------------------------------------------------
    def validate(self) -> None:
        """Refuse configurations libvirtd would refuse, before anything is bound."""
        cfg = self.config
        if cfg.tcp_listen is not None and not ipaddress.ip_address(cfg.tcp_listen[0]).is_loopback:
            raise ValueError(f"plain TCP is for tests on loopback only, not {cfg.tcp_listen[0]}")
        if cfg.tls_listen is not None and not (cfg.tls_cert and cfg.tls_key and cfg.tls_ca):
            raise ValueError("TLS needs a server certificate, its key and the CA certificate")
        if min(cfg.max_clients, cfg.max_requests) < 1 or cfg.max_packet < 28:
            raise ValueError("max_clients and max_requests must be at least 1, max_packet at least 28")

    async def start(self) -> None:
        self.validate()
        cfg = self.config
        loop = asyncio.get_running_loop()
        await self._listen_unix(cfg.socket_path, cfg.socket_mode, readonly=False)
        if cfg.ro_path is not None:
            await self._listen_unix(cfg.ro_path, cfg.ro_socket_mode, readonly=True)
        if cfg.tcp_listen is not None:
            host, port = cfg.tcp_listen
            self._servers.append(
                await loop.create_server(self._protocol(readonly=False, secure=False, tls=False), host, port)
            )
        if cfg.tls_listen is not None:
            host, port = cfg.tls_listen
            self._servers.append(
                await loop.create_server(
                    self._protocol(readonly=False, secure=True, tls=True), host, port, ssl=self._tls_context()
                )
            )
        log.info("listening", extra=kv(socket=cfg.socket_path, tcp=cfg.tcp_listen, tls=cfg.tls_listen))

    def _tls_context(self) -> ssl.SSLContext:
        cfg = self.config
        if not (cfg.tls_cert and cfg.tls_key and cfg.tls_ca):
            raise ValueError("TLS needs a server certificate, its key and the CA certificate")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cfg.tls_cert, cfg.tls_key)
        ctx.load_verify_locations(cfg.tls_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED  # like libvirtd's tls_no_verify_certificate = 0
        # No TLS 1.3 session tickets: libvirt's client waits for the socket to turn readable and then
        # expects the one confirmation byte; a ticket arriving first makes it fail with EAGAIN.
        ctx.num_tickets = 0
        return ctx

    async def _listen_unix(self, path: Path, mode: int, *, readonly: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise ValueError(f"{path} exists and is not a socket")
            if await _socket_in_use(path):
                raise ValueError(f"{path} is in use by another daemon")
            path.unlink()
        old_umask = os.umask(0o077)  # never expose the socket wider than `mode`, even briefly
        try:
            server = await asyncio.get_running_loop().create_unix_server(
                self._protocol(readonly=readonly, secure=True, tls=False), path
            )
        finally:
            os.umask(old_umask)
        os.chmod(path, mode)
        if self.config.socket_group is not None:
            os.chown(path, -1, grp.getgrnam(self.config.socket_group).gr_gid)
        self._servers.append(server)

    def _protocol(self, *, readonly: bool, secure: bool, tls: bool) -> Callable[[], Connection]:
        """The protocol factory of one listener: a Connection per accepted client."""
        return lambda: Connection(self, readonly=readonly, secure=secure, tls=tls)

    # -- lifetime -----------------------------------------------------------------------------------
    async def serve(self) -> None:
        """Run until `stop()`."""
        await self.start()
        await self._stopped.wait()
        await self.shutdown()

    def stop(self) -> None:
        self._stopped.set()

    async def shutdown(self) -> None:
        """Close listeners, clients and drivers; guests keep running (drivers reconnect on restart)."""
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            await conn.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        for path in (self.config.socket_path, self.config.ro_path):
            if path is not None and path.is_socket():
                path.unlink()
        for driver in self.drivers.values():
            try:
                await driver.close()
            except Exception:
                log.exception("closing driver failed", extra=kv(uri=driver.uri))
        self.drivers.clear()


async def _socket_in_use(path: Path) -> bool:
    try:
        _, writer = await asyncio.open_unix_connection(path)
    except OSError:
        return False
    writer.close()
    return True
