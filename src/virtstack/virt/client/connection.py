"""The asyncio client API: a connection to a libvirt daemon (ours or the real one) and its domains.

Each method is one libvirt API call and sends the procedures libvirt's own client library sends for it
(`create()` = DOMAIN_CREATE then DOMAIN_LOOKUP_BY_UUID to learn the new id), so daemons see the same
traffic from us as from virsh or libvirt-python. Mutating calls on a read-only connection are refused
here, before anything is sent, with libvirt's OPERATION_DENIED error.
"""

from __future__ import annotations

import contextlib
import logging
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from virtstack.common.log import kv
from virtstack.virt.client.local import LocalServer, wants_in_process
from virtstack.virt.client.tls import client_context
from virtstack.virt.client.transport import CloseReason, RpcTransport, StreamChannel
from virtstack.virt.client.uri import ConnectURI, default_uri, parse_uri
from virtstack.virt.drivers.base import DomainInfo, DomainState, NodeInfo
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError, error_factory

DomainError = error_factory(ErrorDomain.DOMAIN)
RemoteError = error_factory(ErrorDomain.REMOTE)
log = logging.getLogger(__name__)

#: REMOTE_AUTH_NONE; SASL (1) and polkit (2) are not implemented by this client.
AUTH_NONE = 0
#: VIR_DRV_FEATURE_* numbers the handshake asks about
FEATURE_PROGRAM_KEEPALIVE = 10
FEATURE_REMOTE_EVENT_CALLBACK = 14
FEATURE_REMOTE_CLOSE_CALLBACK = 15
CONNECT_RO = 1
EVENT_ID_LIFECYCLE = 0
#: libvirt's client defaults for keepalive (interval s, count)
KEEPALIVE = (5.0, 5)

LifecycleCallback = Callable[["AsyncDomain", int, int], None]


@dataclass(frozen=True)
class SecurityModel:
    """virSecurityModel: the host's security driver name and DOI."""

    model: str
    doi: str


@dataclass(frozen=True)
class SecurityLabel:
    """virSecurityLabel of one domain."""

    label: str
    enforcing: bool


def _cstr(chars: list[int]) -> str:
    """A fixed `char x[N]` array from the wire (one int per char) as text up to the first NUL."""
    out = bytearray()
    for c in chars:
        if c == 0:
            break
        out.append(c & 0xFF)
    return out.decode("utf-8", "replace")


class AsyncConnection:
    """An open connection; create with `await AsyncConnection.open(uri)`."""

    def __init__(self, uri: str, parsed: ConnectURI, transport: RpcTransport, readonly: bool) -> None:
        self.uri = uri
        self.parsed = parsed
        self.transport = transport
        self.readonly = readonly
        self.features: dict[int, bool] = {}
        self._lifecycle: dict[int, LifecycleCallback] = {}
        self._close_callback_registered = False
        self._local: LocalServer | None = None  # the in-process server of a test:///default
        transport.event_sink = self._on_event

    @classmethod
    async def open(
        cls, uri: str | None = None, *, readonly: bool = False, keepalive: tuple[float, int] | None = KEEPALIVE
    ) -> AsyncConnection:
        """Connect and run libvirt's handshake: AUTH_LIST, keepalive feature, CONNECT_OPEN, features."""
        uri = uri or default_uri() or "qemu:///system"
        parsed = parse_uri(uri)
        if parsed.transport not in (None, "unix", "tcp", "tls"):
            raise RemoteError(
                ErrorCode.NO_SUPPORT, f"transport '{parsed.transport}' (unix, tcp and tls are implemented)"
            )
        local: LocalServer | None = None
        try:
            if wants_in_process(parsed):
                local = LocalServer()
                transport = await RpcTransport.open_unix(await local.start())
            elif parsed.transport in ("tcp", "tls"):
                assert parsed.port is not None
                tls = client_context(parsed) if parsed.transport == "tls" else None
                transport = await RpcTransport.open_tcp(parsed.host, parsed.port, tls)
            else:
                transport = await RpcTransport.open_unix(parsed.socket_path(readonly))
            conn = cls(uri, parsed, transport, readonly)
            conn._local = local
            try:
                await conn._handshake(keepalive)
            except BaseException:
                await transport.close()
                raise
        except BaseException:
            if local is not None:
                await local.stop()
            raise
        return conn

    async def _handshake(self, keepalive: tuple[float, int] | None) -> None:
        auth = await self.transport.call("auth_list")
        if AUTH_NONE not in auth["types"] and auth["types"]:
            raise error_factory(ErrorDomain.RPC)(
                ErrorCode.AUTH_FAILED, f"unsupported authentication types {auth['types']}"
            )
        # asking for this feature is what makes the daemon ping us; we always answer its PINGs
        if await self.supports_feature(FEATURE_PROGRAM_KEEPALIVE) and keepalive is not None:
            self.transport.start_keepalive(*keepalive)
        await self.transport.call(
            "connect_open", {"name": self.parsed.open_name(), "flags": CONNECT_RO if self.readonly else 0}
        )
        await self.supports_feature(FEATURE_REMOTE_EVENT_CALLBACK)
        if await self.supports_feature(FEATURE_REMOTE_CLOSE_CALLBACK):
            await self.transport.call("connect_register_close_callback")
            self._close_callback_registered = True

    async def supports_feature(self, feature: int) -> bool:
        ret = await self.transport.call("connect_supports_feature", {"feature": feature})
        self.features[feature] = bool(ret["supported"])
        return self.features[feature]

    async def close(self) -> None:
        """Unregister, CONNECT_CLOSE, drop the socket; a dead connection just drops."""
        if not self.transport.closed:
            with contextlib.suppress(VirtError):
                if self._close_callback_registered:
                    await self.transport.call("connect_unregister_close_callback")
                await self.transport.call("connect_close")
        await self.transport.close()
        if self._local is not None:
            local, self._local = self._local, None
            await local.stop()

    @property
    def is_alive(self) -> bool:
        return not self.transport.closed

    def on_close(self, callback: Callable[[CloseReason], None]) -> None:
        """Call `callback(reason)` once when the connection goes away (virConnectRegisterCloseCallback)."""
        self.transport.close_listeners.append(callback)

    def _check_writable(self, api: str) -> None:
        if self.readonly:
            raise DomainError(ErrorCode.OPERATION_DENIED, f"read only access prevents {api}")

    async def call(self, proc: str, args: dict[str, Any] | None = None) -> Any:
        """A raw procedure call by name, for procedures this API does not wrap."""
        return await self.transport.call(proc, args)

    # -- host ------------------------------------------------------------------------------------

    def get_uri(self) -> str:
        return self.uri

    async def get_type(self) -> str:
        return str((await self.call("connect_get_type"))["type"])

    async def get_version(self) -> int:
        """Hypervisor version as libvirt encodes it (major * 1,000,000 + minor * 1,000 + micro)."""
        return int((await self.call("connect_get_version"))["hv_ver"])

    async def get_lib_version(self) -> int:
        return int((await self.call("connect_get_lib_version"))["lib_ver"])

    async def get_hostname(self) -> str:
        return str((await self.call("connect_get_hostname"))["hostname"])

    async def get_capabilities(self) -> str:
        return str((await self.call("connect_get_capabilities"))["capabilities"])

    async def node_get_info(self) -> NodeInfo:
        r = await self.call("node_get_info")
        return NodeInfo(_cstr(r["model"]), r["memory"], r["cpus"], r["mhz"], r["nodes"], r["sockets"], r["cores"],
                        r["threads"])

    async def node_get_security_model(self) -> SecurityModel:
        r = await self.call("node_get_security_model")
        return SecurityModel(_cstr(r["model"]), _cstr(r["doi"]))

    async def domain_xml_to_native(self, native_format: str, xml: str, flags: int = 0) -> str:
        r = await self.call(
            "connect_domain_xml_to_native", {"nativeFormat": native_format, "domainXml": xml, "flags": flags}
        )
        return str(r["nativeConfig"])

    # -- domains ---------------------------------------------------------------------------------

    def _domain(self, handle: dict[str, Any]) -> AsyncDomain:
        return AsyncDomain(self, handle["name"], uuidlib.UUID(bytes=bytes(handle["uuid"])), int(handle["id"]))

    async def list_all_domains(self, flags: int = 0) -> list[AsyncDomain]:
        r = await self.call("connect_list_all_domains", {"need_results": 1, "flags": flags})
        return [self._domain(h) for h in r["domains"]]

    async def lookup_by_name(self, name: str) -> AsyncDomain:
        return self._domain((await self.call("domain_lookup_by_name", {"name": name}))["dom"])

    async def lookup_by_uuid(self, uuid: uuidlib.UUID | str) -> AsyncDomain:
        u = uuid if isinstance(uuid, uuidlib.UUID) else uuidlib.UUID(uuid)
        return self._domain((await self.call("domain_lookup_by_uuid", {"uuid": u.bytes}))["dom"])

    async def lookup_by_id(self, domain_id: int) -> AsyncDomain:
        return self._domain((await self.call("domain_lookup_by_id", {"id": domain_id}))["dom"])

    async def define_xml(self, xml: str, flags: int = 0) -> AsyncDomain:
        self._check_writable("virDomainDefineXMLFlags" if flags else "virDomainDefineXML")
        if flags:
            r = await self.call("domain_define_xml_flags", {"xml": xml, "flags": flags})
        else:
            r = await self.call("domain_define_xml", {"xml": xml})
        return self._domain(r["dom"])

    async def create_xml(self, xml: str, flags: int = 0) -> AsyncDomain:
        self._check_writable("virDomainCreateXML")
        return self._domain((await self.call("domain_create_xml", {"xml_desc": xml, "flags": flags}))["dom"])

    # -- events ----------------------------------------------------------------------------------

    async def register_lifecycle(self, callback: LifecycleCallback, dom: AsyncDomain | None = None) -> int:
        """Call `callback(domain, event, detail)` on every lifecycle event (of `dom`, or of all domains)."""
        r = await self.call(
            "connect_domain_event_callback_register_any",
            {"eventID": EVENT_ID_LIFECYCLE, "dom": dom.handle if dom is not None else None},
        )
        callback_id = int(r["callbackID"])
        self._lifecycle[callback_id] = callback
        return callback_id

    async def deregister_lifecycle(self, callback_id: int) -> None:
        self._lifecycle.pop(callback_id, None)
        await self.call("connect_domain_event_callback_deregister_any", {"callbackID": callback_id})

    def _on_event(self, name: str, body: Any) -> None:
        if name != "domain_event_callback_lifecycle":
            log.debug("event ignored", extra=kv(event=name))
            return
        callback = self._lifecycle.get(int(body["callbackID"]))
        if callback is not None:
            msg = body["msg"]
            callback(self._domain(msg["dom"]), int(msg["event"]), int(msg["detail"]))


class AsyncDomain:
    """A domain handle: name, uuid and id as the daemon last reported them."""

    def __init__(self, conn: AsyncConnection, name: str, uuid: uuidlib.UUID, domain_id: int) -> None:
        self.conn = conn
        self.name = name
        self.uuid = uuid
        self.id = domain_id

    def __repr__(self) -> str:
        return f"AsyncDomain(name={self.name!r}, uuid={self.uuid}, id={self.id})"

    @property
    def handle(self) -> dict[str, Any]:
        return {"name": self.name, "uuid": self.uuid.bytes, "id": self.id}

    def uuid_string(self) -> str:
        return str(self.uuid)

    async def _call(self, proc: str, api: str | None = None, **args: Any) -> Any:
        if api is not None:
            self.conn._check_writable(api)
        return await self.conn.call(proc, {"dom": self.handle, **args})

    async def create(self, flags: int = 0) -> None:
        """Start a defined domain; afterwards `id` is the running id."""
        if flags:
            r = await self._call("domain_create_with_flags", "virDomainCreateWithFlags", flags=flags)
            self.id = int(r["dom"]["id"])
            return
        await self._call("domain_create", "virDomainCreate")
        # libvirt's client re-reads the id the same way after DOMAIN_CREATE
        self.id = (await self.conn.lookup_by_uuid(self.uuid)).id

    async def shutdown(self, flags: int = 0) -> None:
        if flags:
            await self._call("domain_shutdown_flags", "virDomainShutdownFlags", flags=flags)
        else:
            await self._call("domain_shutdown", "virDomainShutdown")

    async def reboot(self, flags: int = 0) -> None:
        await self._call("domain_reboot", "virDomainReboot", flags=flags)

    async def destroy(self, flags: int = 0) -> None:
        if flags:
            await self._call("domain_destroy_flags", "virDomainDestroyFlags", flags=flags)
        else:
            await self._call("domain_destroy", "virDomainDestroy")
        self.id = -1

    async def suspend(self) -> None:
        await self._call("domain_suspend", "virDomainSuspend")

    async def resume(self) -> None:
        await self._call("domain_resume", "virDomainResume")

    async def undefine(self, flags: int | None = None) -> None:
        """Remove the persistent config: DOMAIN_UNDEFINE, or DOMAIN_UNDEFINE_FLAGS when `flags` is given."""
        if flags is not None:
            await self._call("domain_undefine_flags", "virDomainUndefineFlags", flags=flags)
        else:
            await self._call("domain_undefine", "virDomainUndefine")

    async def info(self) -> DomainInfo:
        r = await self._call("domain_get_info")
        return DomainInfo(DomainState(r["state"]), r["maxMem"], r["memory"], r["nrVirtCpu"], r["cpuTime"])

    async def state(self, flags: int = 0) -> tuple[int, int]:
        r = await self._call("domain_get_state", flags=flags)
        return int(r["state"]), int(r["reason"])

    async def xml_desc(self, flags: int = 0) -> str:
        if flags & 1:  # VIR_DOMAIN_XML_SECURE
            self.conn._check_writable("virDomainGetXMLDesc with secure flag")
        return str((await self._call("domain_get_xml_desc", flags=flags))["xml"])

    async def autostart(self) -> bool:
        return bool((await self._call("domain_get_autostart"))["autostart"])

    async def set_autostart(self, autostart: bool) -> None:
        await self._call("domain_set_autostart", "virDomainSetAutostart", autostart=1 if autostart else 0)

    async def is_active(self) -> bool:
        return bool((await self._call("domain_is_active"))["active"])

    async def is_persistent(self) -> bool:
        return bool((await self._call("domain_is_persistent"))["persistent"])

    async def has_managed_save_image(self, flags: int = 0) -> bool:
        return bool((await self._call("domain_has_managed_save_image", flags=flags))["result"])

    async def max_memory(self) -> int:
        return int((await self._call("domain_get_max_memory"))["memory"])

    async def os_type(self) -> str:
        return str((await self._call("domain_get_os_type"))["type"])

    async def security_label(self) -> SecurityLabel:
        r = await self._call("domain_get_security_label")
        return SecurityLabel(_cstr(r["label"]), bool(r["enforcing"]))

    async def metadata(self, kind: int, uri: str | None = None, flags: int = 0) -> str:
        """virDomainGetMetadata: kind DESCRIPTION 0, TITLE 1, ELEMENT 2 (namespaced by `uri`)."""
        return str((await self._call("domain_get_metadata", type=kind, uri=uri, flags=flags))["metadata"])

    async def messages(self, flags: int = 0) -> list[str]:
        return [str(m) for m in (await self._call("domain_get_messages", flags=flags))["msgs"]]

    async def open_console(self, dev_name: str | None = None, flags: int = 0) -> StreamChannel:
        """Open the guest console as a byte stream (DOMAIN_OPEN_CONSOLE + STREAM packets)."""
        self.conn._check_writable("virDomainOpenConsole")
        return await self.conn.transport.open_stream(
            "domain_open_console", {"dom": self.handle, "dev_name": dev_name, "flags": flags}
        )
