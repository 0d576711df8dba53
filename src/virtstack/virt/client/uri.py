"""Connection URIs as libvirt's remote driver reads them: driver[+transport]://[user@][host][:port]/path[?params].

Decides where to connect (socket path or host/port) and which URI to send in CONNECT_OPEN: the URI with
the transport, host and the client-only parameters removed (`qemu+unix:///system?socket=S` ->
`qemu:///system`). Local URIs without a transport use libvirt's UNIX socket rules
(src/remote/remote_sockets.c): the per-driver daemon socket if it exists, else the monolithic one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError, error_factory

Error = error_factory(ErrorDomain.REMOTE)
#: virErrorDomain VIR_FROM_URI (not in the shared ErrorDomain table)
VIR_FROM_URI = 45

RUN_DIR = Path("/var/run/libvirt")
TRANSPORTS = ("tls", "unix", "ssh", "ext", "tcp", "libssh2", "libssh")
#: query parameters consumed by the client (remote_driver.c), never sent to the daemon
CLIENT_PARAMS = frozenset(
    {"name", "command", "socket", "auth", "netcat", "keyfile", "no_verify", "no_tty", "pkipath",
     "known_hosts", "known_hosts_verify", "sshauth", "tls_priority", "mode", "proxy"}
)
#: per-driver daemons of the modular layout, by URI scheme
MODULAR_DAEMONS = {"qemu": "virtqemud", "test": "virtqemud", "lxc": "virtlxcd", "network": "virtnetworkd",
                   "storage": "virtstoraged"}
DEFAULT_PORTS = {"tcp": 16509, "tls": 16514}


@dataclass(frozen=True)
class ConnectURI:
    """A parsed connection URI and what the client derives from it."""

    uri: str
    driver: str
    transport: str | None
    host: str
    port: int | None
    path: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return not self.host and self.transport in (None, "unix")

    def open_name(self) -> str:
        """The URI sent in CONNECT_OPEN (libvirt's doRemoteOpen: no transport, host or client params)."""
        if "name" in self.params:
            return self.params["name"]
        query = "&".join(
            f"{quote(k, safe='')}={quote(v, safe='/')}" for k, v in self.params.items() if k not in CLIENT_PARAMS
        )
        return f"{self.driver}://{self.path}" + (f"?{query}" if query else "")

    def socket_path(self, readonly: bool = False) -> str:
        """Where a UNIX-socket connection goes."""
        if "socket" in self.params:
            return self.params["socket"]
        suffix = "-sock-ro" if readonly else "-sock"
        if self.path.startswith("/session"):
            runtime = os.environ.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}")
            return f"{runtime}/libvirt/libvirt{suffix}"
        modular = MODULAR_DAEMONS.get(self.driver)
        if modular and self.params.get("mode") != "legacy" and (RUN_DIR / f"{modular}-sock").exists():
            return str(RUN_DIR / f"{modular}{suffix}")
        return str(RUN_DIR / f"libvirt{suffix}")


def parse_uri(uri: str) -> ConnectURI:
    """Parse `uri`; errors read as libvirt's ("transport in URL not recognised", "unable to parse URI")."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise VirtError(ErrorCode.INTERNAL_ERROR, f"Unable to parse URI {uri}", VIR_FROM_URI) from None
    if not parts.scheme or "://" not in uri:
        raise VirtError(ErrorCode.INTERNAL_ERROR, f"Unable to parse URI {uri}", VIR_FROM_URI)
    driver, _, transport = parts.scheme.partition("+")
    if transport and transport not in TRANSPORTS:
        raise Error(
            ErrorCode.INVALID_ARG,
            "remote_open: transport in URL not recognised (should be tls|unix|ssh|ext|tcp|libssh2|libssh)",
        )
    if not transport and parts.hostname:
        transport = "tls"
    params = query_params(parts.query)
    return ConnectURI(
        uri=uri,
        driver=driver,
        transport=transport or None,
        host=parts.hostname or "",
        port=port if port is not None else DEFAULT_PORTS.get(transport or ""),
        path=parts.path or "/",
        params=params,
    )


def default_uri() -> str | None:
    """LIBVIRT_DEFAULT_URI, as libvirt's client library honours it."""
    return os.environ.get("LIBVIRT_DEFAULT_URI") or None


def query_params(query: str) -> dict[str, str]:
    """URI parameters as libvirt's virURIParseParams reads them: %XX decoded but '+' kept (a socket
    path may hold one), '&' separating (';' where no '&' is left), a bare name meaning "", "=value"
    ignored."""
    params: dict[str, str] = {}
    while query:
        end = query.find("&")
        if end < 0:
            end = query.find(";")
        if end < 0:
            end = len(query)
        part, query = query[:end], query[end + 1 :]
        name, eq, value = part.partition("=")
        if part and name:
            params[unquote(name)] = unquote(value) if eq else ""
    return params

