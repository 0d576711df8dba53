"""One RPC connection to a libvirt daemon: framing, serials, replies, events, streams and keepalive.

Rules: one reader task owns the socket's read side; calls wait on futures keyed by serial (libvirt
clients number serials from 0 per connection). MESSAGE packets of the remote program are events and go
to the event sink; keepalive PINGs are answered with PONGs whatever the client is doing; STREAM packets
go to the stream registered under their serial. A lost connection fails every waiting call with the
error libvirt's client reports ("End of file while reading data").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from enum import IntEnum
from typing import Any

from virtstack.common.log import kv
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError, error_factory
from virtstack.virt.rpc import protocol, xdr
from virtstack.virt.rpc.errors import decode_error
from virtstack.virt.rpc.message import (
    Header,
    MessageStatus,
    MessageType,
    PacketReader,
    ProtocolError,
    encode_packet,
)
from virtstack.virt.rpc.protocol import (
    KEEPALIVE,
    KEEPALIVE_PROGRAM,
    PROTOCOL_VERSION,
    REMOTE_PROGRAM,
    Procedure,
)

Error = error_factory(ErrorDomain.RPC)
log = logging.getLogger(__name__)
#: keepalive procedure numbers, from the protocol table (virkeepaliveprotocol.x)
KEEPALIVE_PING = KEEPALIVE["PING"].number
KEEPALIVE_PONG = KEEPALIVE["PONG"].number


class CloseReason(IntEnum):
    """virConnectCloseReason: why a connection went away, as close callbacks are told."""

    ERROR = 0
    EOF = 1
    KEEPALIVE = 2
    CLIENT = 3


EventSink = Callable[[str, Any], None]


def _procedure(name: str) -> Procedure:
    """A remote procedure by method name (`domain_get_info`)."""
    return protocol.REMOTE[name.upper()]


def encode_call(proc: Procedure, args: dict[str, Any] | None) -> bytes:
    """A call's arguments as XDR, or libvirt's INVALID_ARG error for values the protocol cannot carry.

    Strings travel as UTF-8: text that is not (e.g. a command-line argument or a file with stray bytes,
    kept as surrogate escapes) is refused here rather than escaping as a Python exception.
    """
    try:
        return proc.encode_args(args)
    except UnicodeError:
        raise Error(ErrorCode.INVALID_ARG, f"{proc.name.lower()}: string argument is not valid UTF-8") from None
    except xdr.XdrError as exc:  # e.g. a string over its protocol maximum; libvirt's wording
        log.debug("cannot encode call", extra=kv(proc=proc.name, error=exc))
        raise Error(ErrorCode.RPC, "Unable to encode message payload") from None


def eof_error() -> VirtError:
    return Error(ErrorCode.SYSTEM_ERROR, "End of file while reading data: Input/output error")


class StreamChannel:
    """The client end of one RPC stream (e.g. a console): data packets share the call's proc and serial."""

    def __init__(self, transport: RpcTransport, proc: int, serial: int) -> None:
        self._transport = transport
        self.proc = proc
        self.serial = serial
        self._queue: asyncio.Queue[bytes | VirtError] = asyncio.Queue()
        self.finished = False

    def feed(self, header: Header, payload: bytes) -> None:
        if header.status == MessageStatus.CONTINUE:
            self._queue.put_nowait(payload)
        elif header.status == MessageStatus.ERROR:
            self._queue.put_nowait(decode_error(payload))
        else:  # OK: the sender finished
            self._queue.put_nowait(b"")

    def fail(self, err: VirtError) -> None:
        self._queue.put_nowait(err)

    async def read(self) -> bytes:
        """Next chunk; b'' when the other side ended the stream."""
        if self.finished:
            return b""
        item = await self._queue.get()
        if isinstance(item, VirtError):
            self.finished = True
            raise item
        if not item:
            self.finished = True
        return item

    async def write(self, data: bytes) -> None:
        await self._transport.send(
            Header(REMOTE_PROGRAM, PROTOCOL_VERSION, self.proc, MessageType.STREAM, self.serial, MessageStatus.CONTINUE), data
        )

    async def close(self) -> None:
        """End our side (an empty OK packet) and forget the stream."""
        if not self._transport.closed:
            with contextlib.suppress(VirtError):
                await self._transport.send(
                    Header(REMOTE_PROGRAM, PROTOCOL_VERSION, self.proc, MessageType.STREAM, self.serial, MessageStatus.OK)
                )
        self._transport.streams.pop(self.serial, None)
        self.finished = True


class RpcTransport:
    """A connected socket speaking libvirt's RPC; `call()` is the only way requests leave."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._serial = 0
        self._pending: dict[int, tuple[Procedure, asyncio.Future[Any]]] = {}
        self.streams: dict[int, StreamChannel] = {}
        self.event_sink: EventSink | None = None
        self.close_listeners: list[Callable[[CloseReason], None]] = []
        self.closed = False
        self._send_lock = asyncio.Lock()
        self._last_rx = time.monotonic()
        self._reader_task = asyncio.get_running_loop().create_task(self._read_loop())
        self._keepalive_task: asyncio.Task[None] | None = None

    @classmethod
    async def open_unix(cls, path: str) -> RpcTransport:
        try:
            reader, writer = await asyncio.open_unix_connection(path)
        except OSError as exc:
            raise Error(
                ErrorCode.SYSTEM_ERROR, f"Failed to connect socket to '{path}': {exc.strerror or exc}"
            ) from None
        return cls(reader, writer)

    @classmethod
    async def open_tcp(cls, host: str, port: int, tls: ssl.SSLContext | None = None) -> RpcTransport:
        """A TCP connection, optionally TLS; with TLS, wait for the server's verdict on our certificate."""
        try:
            reader, writer = await asyncio.open_connection(host, port, ssl=tls, server_hostname=host if tls else None)
        except ssl.SSLError as exc:
            raise Error(ErrorCode.AUTH_FAILED, f"TLS handshake failed: {exc.reason or exc}") from None
        except OSError as exc:
            raise Error(
                ErrorCode.SYSTEM_ERROR, f"unable to connect to server at '{host}:{port}': {exc.strerror or exc}"
            ) from None
        if tls is not None:
            try:
                verdict = await reader.readexactly(1)
            except (asyncio.IncompleteReadError, OSError, ssl.SSLError):
                verdict = b""
            if verdict != b"\x01":
                writer.close()
                raise Error(ErrorCode.AUTH_FAILED, "server verification (of our certificate or IP address) failed")
        return cls(reader, writer)

    # -- sending ---------------------------------------------------------------------------------

    async def send(self, header: Header, payload: bytes = b"") -> None:
        if self.closed:
            raise Error(ErrorCode.INTERNAL_ERROR, "client socket is closed")
        try:
            packet = encode_packet(header, payload)
        except ProtocolError as exc:
            raise Error(ErrorCode.RPC, str(exc)) from None
        async with self._send_lock:
            try:
                self._writer.write(packet)
                await self._writer.drain()
            except (OSError, RuntimeError):
                self._shutdown(eof_error())
                raise eof_error() from None

    async def call(self, proc_name: str, args: dict[str, Any] | None = None) -> Any:
        """Call a remote procedure by name (`domain_get_info`) and return its decoded reply."""
        proc = _procedure(proc_name)
        payload = encode_call(proc, args)
        serial, fut = self._register(proc)
        await self.send(Header(REMOTE_PROGRAM, PROTOCOL_VERSION, proc.number, MessageType.CALL, serial, MessageStatus.OK), payload)
        return await fut

    async def open_stream(self, proc_name: str, args: dict[str, Any]) -> StreamChannel:
        """Make a call that opens a stream; the stream is registered before the call leaves."""
        proc = _procedure(proc_name)
        payload = encode_call(proc, args)
        serial, fut = self._register(proc)
        stream = StreamChannel(self, proc.number, serial)
        self.streams[serial] = stream
        try:
            await self.send(Header(REMOTE_PROGRAM, PROTOCOL_VERSION, proc.number, MessageType.CALL, serial, MessageStatus.OK), payload)
            await fut
        except VirtError:
            self.streams.pop(serial, None)
            raise
        return stream

    def _register(self, proc: Procedure) -> tuple[int, asyncio.Future[Any]]:
        if self.closed:
            raise Error(ErrorCode.INTERNAL_ERROR, "client socket is closed")
        serial = self._serial
        self._serial = (self._serial + 1) & 0xFFFFFFFF
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[serial] = (proc, fut)
        return serial, fut

    # -- receiving -------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        err: VirtError | None = None
        packets = PacketReader()
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    err = eof_error()
                    break
                self._last_rx = time.monotonic()
                for packet in packets.feed(data):
                    await self._dispatch(packet.header, packet.payload)
        except (ConnectionError, OSError):
            err = eof_error()
        except ProtocolError as exc:
            err = Error(ErrorCode.RPC, str(exc))
        except asyncio.CancelledError:
            err = None
        except VirtError as exc:
            err = exc
        self._shutdown(err if err is not None else eof_error())

    async def _dispatch(self, header: Header, payload: bytes) -> None:
        if header.prog == KEEPALIVE_PROGRAM:
            if header.proc == KEEPALIVE_PING:
                await self.send(Header(KEEPALIVE_PROGRAM, 1, KEEPALIVE_PONG, MessageType.MESSAGE, 0, MessageStatus.OK))
            return
        if header.prog != REMOTE_PROGRAM:
            log.warning("packet for unknown program dropped", extra=kv(prog=hex(header.prog)))
            return
        if header.type == MessageType.REPLY:
            entry = self._pending.pop(header.serial, None)
            if entry is None or entry[1].done():
                return
            proc, fut = entry
            try:
                if header.status == MessageStatus.ERROR:
                    fut.set_exception(decode_error(payload))
                else:
                    fut.set_result(proc.decode_ret(payload))
            except xdr.XdrError as exc:
                fut.set_exception(Error(ErrorCode.RPC, f"cannot decode reply to {proc.name}: {exc}"))
        elif header.type == MessageType.MESSAGE:
            event = protocol.REMOTE.get(header.proc)
            if event is None or self.event_sink is None:
                return
            try:
                body = event.decode_args(payload)  # an event's `_msg` type
            except xdr.XdrError as exc:
                log.warning("undecodable event dropped", extra=kv(proc=header.proc, error=exc))
                return
            self.event_sink(event.method, body)
        elif header.type == MessageType.STREAM:
            stream = self.streams.get(header.serial)
            if stream is not None:
                stream.feed(header, payload)
                if header.status != MessageStatus.CONTINUE:
                    self.streams.pop(header.serial, None)

    # -- keepalive and shutdown ------------------------------------------------------------------

    def start_keepalive(self, interval: float, count: int) -> None:
        """Ping the server when idle; give up after `interval * (count + 1)` s without a packet."""
        if self._keepalive_task is None and interval > 0:
            self._keepalive_task = asyncio.get_running_loop().create_task(self._keepalive(interval, count))

    async def _keepalive(self, interval: float, count: int) -> None:
        while not self.closed:
            await asyncio.sleep(interval)
            idle = time.monotonic() - self._last_rx
            if idle >= interval * (count + 1):
                self._shutdown(
                    Error(ErrorCode.SYSTEM_ERROR, "connection closed due to keepalive timeout"), CloseReason.KEEPALIVE
                )
                self._writer.close()
                return
            if idle >= interval:
                with contextlib.suppress(VirtError):
                    await self.send(Header(KEEPALIVE_PROGRAM, 1, KEEPALIVE_PING, MessageType.MESSAGE, 0, MessageStatus.OK))

    def _shutdown(self, err: VirtError | None, reason: CloseReason | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        failure = err or eof_error()
        for _proc, fut in self._pending.values():
            if not fut.done():
                fut.set_exception(failure)
        self._pending.clear()
        for stream in self.streams.values():
            stream.fail(failure)
        self.streams.clear()
        if reason is None:
            reason = CloseReason.CLIENT if err is None else CloseReason.EOF
        for listener in self.close_listeners:
            try:
                listener(reason)
            except Exception:  # a user callback must not break the shutdown
                log.exception("close callback failed")

    async def close(self) -> None:
        """Drop the socket and stop the reader and keepalive tasks."""
        self._shutdown(None)
        for task in (self._keepalive_task, self._reader_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
