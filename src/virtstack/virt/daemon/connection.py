"""One client connection of virtstackd: packets in, calls dispatched, replies/events/stream data out.

Rules (libvirt 9.0's daemon): auth is `none` (unix socket) or the TLS client certificate; only the auth
procedures, feature checks and CONNECT_OPEN work before the open; a read-only connection may only call
procedures whose ACL is read-only; calls run concurrently (at most `max_requests` per client, further
packets wait unread) and replies carry the call's serial; a packet that breaks framing or whose payload
does not decode closes this connection and nothing else.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from virtstack.common.log import kv
from virtstack.virt.daemon import dispatch
from virtstack.virt.daemon.streams import ConsolePump
from virtstack.virt.drivers.base import DomainEvent, DomainRef, HypervisorDriver, ListFlags
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError
from virtstack.virt.rpc import xdr
from virtstack.virt.rpc.errors import encode_error, rpc_error
from virtstack.virt.rpc.message import (
    Header,
    MessageStatus,
    MessageType,
    Packet,
    PacketReader,
    ProtocolError,
    encode_packet,
)
from virtstack.virt.rpc.protocol import (
    KEEPALIVE,
    KEEPALIVE_PROGRAM,
    PROTOCOL_VERSION,
    REMOTE,
    Procedure,
    programs,
)

if TYPE_CHECKING:
    from virtstack.virt.daemon.server import Daemon

log = logging.getLogger(__name__)

#: libvirt's library version we speak as (virsh version: "Using library: libvirt 9.0.0")
LIB_VERSION = 9_000_000
# virDrvFeature numbers the daemon answers yes to: TYPED_PARAM_STRING 9, PROGRAM_KEEPALIVE 10,
# REMOTE_EVENT_CALLBACK 14, REMOTE_CLOSE_CALLBACK 15
_FEATURE_KEEPALIVE = 10
_FEATURES = frozenset({9, _FEATURE_KEEPALIVE, 14, 15})
_BEFORE_OPEN = frozenset({"AUTH_LIST", "AUTH_POLKIT", "CONNECT_SUPPORTS_FEATURE", "CONNECT_OPEN"})
_EVENT_ID_LIFECYCLE = 0
_EVENT_ID_LAST = 26  # VIR_DOMAIN_EVENT_ID_LAST in libvirt 9.0
#: bytes queued to one client before the daemon gives up on it (libvirt's max_client_requests analogue)
_MAX_UNREAD = 64 * 1024 * 1024
#: receive buffer per client: most calls fit many times over; bigger packets arrive over several reads
_READ_SIZE = 64 * 1024


@dataclass
class _Callback:
    event_id: int
    dom_uuid: Any  # uuid.UUID | None


class Connection(asyncio.BufferedProtocol):
    """State and I/O of one client, as the asyncio protocol of its socket.

    Bytes are received straight into a buffer of our own (no per-read allocation) and a call whose
    turn it is starts at once; only packets that must wait (stream data, a call while `max_requests`
    run) queue, and reading pauses until they are through, so a client cannot make the daemon buffer
    without bound. Reading also pauses while replies wait for the client to read them.
    """

    def __init__(self, daemon: Daemon, *, readonly: bool, secure: bool, tls: bool = False) -> None:
        self.daemon = daemon
        self.readonly = readonly
        self.secure = secure
        self.tls = tls
        self.peer = "unix"
        self.transport: asyncio.Transport | None = None
        self.driver: HypervisorDriver | None = None
        self._rbuf = memoryview(bytearray(_READ_SIZE))
        self._packets = PacketReader(daemon.config.max_packet)
        self._max_requests = daemon.config.max_requests
        self._running = 0  # calls in progress
        self._slot_freed = asyncio.Event()
        self._inbox: deque[Packet] = deque()  # packets waiting their turn, in order
        self._inbox_task: asyncio.Task[None] | None = None
        self._pauses: set[str] = set()  # why reading is paused: "inbox", "writing"
        self._tasks: set[asyncio.Task[Any]] = set()
        self._callbacks: dict[int, _Callback] = {}
        self._legacy_events: set[int] = set()
        self._next_callback = 1
        self._listening = False
        self._streams: dict[int, ConsolePump] = {}
        self._keepalive: asyncio.Task[None] | None = None
        self._last_rx = time.monotonic()
        self._lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closed = False
        self._released = False

    # -- transport events ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.peer = str(transport.get_extra_info("peername") or "unix")
        if len(self.daemon.connections) >= self.daemon.config.max_clients:
            log.warning(
                "refusing client %s: too many clients (max_clients=%d)", self.peer, self.daemon.config.max_clients
            )
            self._closed = self._released = True
            transport.close()
            return
        if self.tls:
            # libvirt's server sends one byte 0x01 once the client certificate passed its checks
            transport.write(b"\x01")
        self.daemon.connections.add(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._rbuf

    def buffer_updated(self, nbytes: int) -> None:
        if self._closed:
            return
        self._last_rx = time.monotonic()
        try:
            for packet in self._packets.feed(self._rbuf[:nbytes]):
                if self._inbox_task is not None or not self._take(packet):  # keep the order
                    self._queue(packet)
        except ProtocolError as exc:
            log.warning("closing client: %s", exc, extra=kv(peer=self.peer))
            self._closed_by_error()

    def eof_received(self) -> bool:
        return False  # the client is done: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost.done():
            self._lost.set_result(None)
        self.daemon.connections.discard(self)
        if not self._released:
            self._tasks.add(asyncio.create_task(self.close()))

    def pause_writing(self) -> None:
        self._pause("writing")

    def resume_writing(self) -> None:
        self._resume("writing")

    def _pause(self, reason: str) -> None:
        if not self._pauses and self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()
        self._pauses.add(reason)

    def _resume(self, reason: str) -> None:
        self._pauses.discard(reason)
        if not self._pauses and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    # -- output -------------------------------------------------------------------------------------
    def send(self, header: Header, payload: bytes = b"") -> None:
        transport = self.transport
        if self._closed or transport is None or transport.is_closing():
            return
        transport.write(encode_packet(header, payload))
        # a client that stops reading must not make the daemon buffer without bound (events, streams)
        if transport.get_write_buffer_size() > _MAX_UNREAD:
            log.warning("closing client: it stopped reading its replies and events", extra=kv(peer=self.peer))
            self._closed_by_error()

    def _reply_error(self, call: Header, err: VirtError) -> None:
        self.send(call.reply(MessageStatus.ERROR), encode_error(err))

    async def close(self) -> None:
        """Drop the client: its streams, keepalive and event listener go; calls in flight finish
        (like libvirtd, a disconnect never aborts a half-done start or define), their replies dropped."""
        if self._closed and self._released:
            return
        self._closed = True
        self._released = True
        if self._keepalive is not None:
            self._keepalive.cancel()
        self._inbox.clear()
        for pump in list(self._streams.values()):
            await pump.close()
        self._streams.clear()
        self._release_driver()
        if self.transport is not None:
            self.transport.close()
            await self._lost

    def _release_driver(self) -> None:
        if self.driver is not None and self._listening:
            self.driver.remove_event_listener(self._on_event)
        self._listening = False
        self._callbacks.clear()
        self._legacy_events.clear()
        self.driver = None

    def _closed_by_error(self) -> None:
        self._closed = True
        if self.transport is not None:
            self.transport.close()

    # -- packets in ---------------------------------------------------------------------------------
    def _take(self, packet: Packet) -> bool:
        """Handle `packet` now; False if it has to wait (stream data, or a call while max_requests run)."""
        h = packet.header
        if h.prog == KEEPALIVE_PROGRAM:
            if h.proc == KEEPALIVE["PING"].number and h.type == MessageType.MESSAGE:
                pong = Header(
                    KEEPALIVE_PROGRAM,
                    PROTOCOL_VERSION,
                    KEEPALIVE["PONG"].number,
                    MessageType.MESSAGE,
                    0,
                    MessageStatus.OK,
                )
                self.send(pong)
            return True
        if h.type == MessageType.STREAM:
            return False
        if h.type != MessageType.CALL:
            raise ProtocolError(f"unexpected message type {h.type.name} from client")
        program = programs().get(h.prog)
        if program is None or h.vers != PROTOCOL_VERSION:
            self._reply_error(h, rpc_error(f"cannot find program {h.prog} version {h.vers}"))
            return True
        proc = program.get(h.proc)
        if proc is None:
            self._reply_error(h, rpc_error(f"unknown procedure: {h.proc}"))
            return True
        if self._running >= self._max_requests:
            return False
        self._running += 1
        # the set only keeps running calls referenced; each call removes itself as it ends (cheaper than
        # a done callback, which costs one more event loop turn per call)
        self._tasks.add(asyncio.create_task(self._call(h, proc, packet.payload)))
        return True

    def _queue(self, packet: Packet) -> None:
        self._inbox.append(packet)
        if self._inbox_task is None:
            self._pause("inbox")
            self._inbox_task = asyncio.create_task(self._work_inbox())

    async def _work_inbox(self) -> None:
        """Handle the queued packets in order, waiting for stream writes and free call slots."""
        try:
            while self._inbox and not self._closed:
                packet = self._inbox.popleft()
                if packet.header.type == MessageType.STREAM:
                    await self._stream_packet(packet)
                    continue
                while not self._closed and not self._take(packet):
                    self._slot_freed.clear()
                    await self._slot_freed.wait()
        except ProtocolError as exc:
            log.warning("closing client: %s", exc, extra=kv(peer=self.peer))
            self._closed_by_error()
        finally:
            self._inbox_task = None
            self._resume("inbox")

    async def _call(self, h: Header, proc: Procedure, payload: bytes) -> None:
        try:
            try:
                args = proc.decode_args(payload)
            except xdr.XdrError as exc:  # the client broke the protocol: only its connection goes
                log.warning("closing client: bad payload: %s", exc, extra=kv(peer=self.peer, proc=proc.name))
                self._closed_by_error()
                return
            body = await self._dispatch(h, proc, args)
            self.send(h.reply(), body)
            if proc.name == "CONNECT_SUPPORTS_FEATURE" and body == b"\0\0\0\1":
                self._maybe_start_keepalive(args["feature"])
        except VirtError as err:
            self._reply_error(h, err)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a driver bug must not kill the daemon: report it to this caller
            log.exception("procedure failed", extra=kv(peer=self.peer, proc=proc.name))
            self._reply_error(
                h, VirtError(ErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}", ErrorDomain.RPC)
            )
        finally:
            self._running -= 1
            self._slot_freed.set()
            task = asyncio.current_task()
            if task is not None:
                self._tasks.discard(task)

    # -- dispatch -----------------------------------------------------------------------------------
    async def _dispatch(self, h: Header, proc: Procedure, args: Any) -> bytes:
        if self.driver is None and proc.name not in _BEFORE_OPEN:
            raise rpc_error("connection not open", ErrorCode.INTERNAL_ERROR)
        if self.readonly and not proc.read_only_ok:
            raise VirtError(
                ErrorCode.OPERATION_DENIED,
                f"read only access prevents {dispatch.api_name(proc)}",
                dispatch.api_error_domain(proc),
            )
        if self.readonly and proc.secure_flags and isinstance(args, dict) and args.get("flags", 0) & proc.secure_flags:
            raise VirtError(
                ErrorCode.OPERATION_DENIED,
                f"{dispatch.api_name(proc)} with secure flag",
                dispatch.api_error_domain(proc),
            )
        if proc.name in _SPECIAL:
            result = getattr(self, f"_proc_{proc.name.lower()}")(h, args)
            if inspect.isawaitable(result):
                result = await result
            if isinstance(result, bytes):  # a handler that encodes its reply itself
                return result
            return proc.encode_ret(result) if proc.ret is not xdr.VOID else b""
        assert self.driver is not None
        return await dispatch.call_driver(self.driver, proc, args)

    # -- connection procedures -------------------------------------------------------------------------
    def _proc_auth_list(self, h: Header, args: None) -> dict[str, Any]:
        return {"types": [0]}  # REMOTE_AUTH_NONE: unix socket peers are trusted, TLS peers checked by cert

    def _proc_connect_supports_feature(self, h: Header, args: dict[str, Any]) -> dict[str, Any]:
        return {"supported": int(args["feature"] in _FEATURES)}

    async def _proc_connect_open(self, h: Header, args: dict[str, Any]) -> None:
        if self.driver is not None:
            raise rpc_error("connection already open", ErrorCode.INTERNAL_ERROR)
        if args["flags"] & 1:  # VIR_CONNECT_RO
            self.readonly = True
        self.driver = await self.daemon.open_driver(args["name"] or "")

    def _proc_connect_close(self, h: Header, args: None) -> None:
        self._release_driver()

    def _proc_connect_get_type(self, h: Header, args: None) -> dict[str, Any]:
        assert self.driver is not None
        return {"type": self.driver.type_name}

    def _proc_connect_get_uri(self, h: Header, args: None) -> dict[str, Any]:
        assert self.driver is not None
        return {"uri": self.driver.uri}

    def _proc_connect_get_hostname(self, h: Header, args: None) -> dict[str, Any]:
        return {"hostname": socket.gethostname()}

    def _proc_connect_get_lib_version(self, h: Header, args: None) -> dict[str, Any]:
        return {"lib_ver": LIB_VERSION}

    def _proc_connect_is_secure(self, h: Header, args: None) -> dict[str, Any]:
        return {"secure": int(self.secure)}

    def _proc_connect_register_close_callback(self, h: Header, args: None) -> None:
        return None  # close callbacks fire client-side when the socket drops; nothing to keep here

    def _proc_connect_unregister_close_callback(self, h: Header, args: None) -> None:
        return None

    async def _proc_connect_list_all_domains(self, h: Header, args: dict[str, Any]) -> bytes:
        assert self.driver is not None
        refs = await self.driver.connect_list_all_domains(args["flags"])
        return dispatch.list_all_domains_reply(refs, bool(args["need_results"]))

    async def _refs(self, flags: int) -> list[DomainRef]:
        assert self.driver is not None
        return await self.driver.connect_list_all_domains(flags)

    async def _proc_connect_num_of_domains(self, h: Header, args: None) -> dict[str, Any]:
        return {"num": len(await self._refs(ListFlags.ACTIVE))}

    async def _proc_connect_list_domains(self, h: Header, args: dict[str, Any]) -> dict[str, Any]:
        return {"ids": [r.id for r in await self._refs(ListFlags.ACTIVE)][: args["maxids"]]}

    async def _proc_connect_num_of_defined_domains(self, h: Header, args: None) -> dict[str, Any]:
        return {"num": len(await self._refs(ListFlags.INACTIVE))}

    async def _proc_connect_list_defined_domains(self, h: Header, args: dict[str, Any]) -> dict[str, Any]:
        return {"names": [r.name for r in await self._refs(ListFlags.INACTIVE)][: args["maxnames"]]}

    async def _proc_domain_get_xml_desc(self, h: Header, args: dict[str, Any]) -> dict[str, Any]:
        assert self.driver is not None
        xml = await self.driver.domain_get_xml_desc(dispatch.domain_from_wire(args["dom"]), args["flags"])
        return {"xml": xml}

    # -- events -------------------------------------------------------------------------------------
    def _listen(self) -> None:
        if not self._listening and self.driver is not None:
            self.driver.add_event_listener(self._on_event)
            self._listening = True

    def _proc_connect_domain_event_callback_register_any(
        self, h: Header, args: dict[str, Any]
    ) -> dict[str, Any]:
        event_id = args["eventID"]
        if not 0 <= event_id < _EVENT_ID_LAST:
            raise VirtError(ErrorCode.INVALID_ARG, f"unsupported event ID {event_id}", ErrorDomain.RPC)
        dom = args["dom"]
        callback_id = self._next_callback
        self._next_callback += 1
        self._callbacks[callback_id] = _Callback(
            event_id, dispatch.domain_from_wire(dom).uuid if dom else None
        )
        self._listen()
        return {"callbackID": callback_id}

    def _proc_connect_domain_event_callback_deregister_any(self, h: Header, args: dict[str, Any]) -> None:
        if self._callbacks.pop(args["callbackID"], None) is None:
            raise VirtError(
                ErrorCode.INVALID_ARG,
                f"domain event callback {args['callbackID']} not registered",
                ErrorDomain.RPC,
            )

    def _proc_connect_domain_event_register_any(self, h: Header, args: dict[str, Any]) -> None:
        if args["eventID"] in self._legacy_events:
            raise VirtError(
                ErrorCode.INTERNAL_ERROR,
                f"domain event {args['eventID']} already registered",
                ErrorDomain.RPC,
            )
        self._legacy_events.add(args["eventID"])
        self._listen()

    def _proc_connect_domain_event_deregister_any(self, h: Header, args: dict[str, Any]) -> None:
        if args["eventID"] not in self._legacy_events:
            raise VirtError(
                ErrorCode.INTERNAL_ERROR, f"domain event {args['eventID']} not registered", ErrorDomain.RPC
            )
        self._legacy_events.discard(args["eventID"])

    def _on_event(self, event: DomainEvent) -> None:
        """Driver listener: push lifecycle events to the callbacks that match (MESSAGE packets, serial 0)."""
        inner = {
            "dom": dispatch.domain_to_wire(event.domain),
            "event": int(event.event),
            "detail": event.detail,
        }
        cb_proc = REMOTE["DOMAIN_EVENT_CALLBACK_LIFECYCLE"]
        for callback_id, cb in list(self._callbacks.items()):
            if cb.event_id != _EVENT_ID_LIFECYCLE or (
                cb.dom_uuid is not None and cb.dom_uuid != event.domain.uuid
            ):
                continue
            payload = cb_proc.encode_args({"callbackID": callback_id, "msg": inner})
            self.send(
                Header(
                    REMOTE.number, PROTOCOL_VERSION, cb_proc.number, MessageType.MESSAGE, 0, MessageStatus.OK
                ),
                payload,
            )
        if _EVENT_ID_LIFECYCLE in self._legacy_events:
            legacy = REMOTE["DOMAIN_EVENT_LIFECYCLE"]
            self.send(
                Header(
                    REMOTE.number, PROTOCOL_VERSION, legacy.number, MessageType.MESSAGE, 0, MessageStatus.OK
                ),
                legacy.encode_args(inner),
            )

    # -- keepalive ----------------------------------------------------------------------------------
    def _maybe_start_keepalive(self, feature: int) -> None:
        interval = self.daemon.config.keepalive_interval
        if feature == _FEATURE_KEEPALIVE and interval > 0 and self._keepalive is None:
            self._keepalive = asyncio.create_task(
                self._keepalive_loop(interval, self.daemon.config.keepalive_count)
            )

    async def _keepalive_loop(self, interval: float, count: int) -> None:
        ping = Header(
            KEEPALIVE_PROGRAM,
            PROTOCOL_VERSION,
            KEEPALIVE["PING"].number,
            MessageType.MESSAGE,
            0,
            MessageStatus.OK,
        )
        while not self._closed:
            await asyncio.sleep(interval)
            idle = time.monotonic() - self._last_rx
            if idle > interval * (count + 1):
                log.warning(
                    "closing client: no keepalive response for %.0f s", idle, extra=kv(peer=self.peer)
                )
                self._closed_by_error()
                return
            if idle >= interval:
                self.send(ping)

    # -- streams (console) --------------------------------------------------------------------------
    async def _proc_domain_open_console(self, h: Header, args: dict[str, Any]) -> None:
        assert self.driver is not None
        proc = REMOTE["DOMAIN_OPEN_CONSOLE"]
        method = dispatch.method_for(self.driver, proc)
        console = await method(dispatch.domain_from_wire(args["dom"]), args["dev_name"], args["flags"])
        pump = ConsolePump(self, h, console)
        self._streams[h.serial] = pump
        # the reply goes out before the first data packet: start pumping once this call has replied
        asyncio.get_running_loop().call_soon(pump.start)

    async def _stream_packet(self, packet: Packet) -> None:
        h = packet.header
        pump = self._streams.get(h.serial)
        if pump is None:
            return  # data for a stream already closed: libvirt drops it too
        if h.status == MessageStatus.CONTINUE:
            await pump.write(packet.payload)
            return
        del self._streams[h.serial]
        if h.status == MessageStatus.OK:  # client finished: confirm
            await pump.close()
            self.send(Header(h.prog, h.vers, h.proc, MessageType.STREAM, h.serial, MessageStatus.OK))
        else:  # client aborted: libvirtd answers the abort with an error reply (daemonStreamHandleAbort)
            await pump.close()
            self._reply_error(h, rpc_error("stream aborted at client request"))

    def stream_ended(self, serial: int) -> None:
        self._streams.pop(serial, None)


#: procedures the connection answers itself (its `_proc_*` methods) instead of passing them to the driver
_SPECIAL = frozenset(name.removeprefix("_proc_").upper() for name in vars(Connection) if name.startswith("_proc_"))
