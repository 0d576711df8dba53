"""Packets of libvirt's RPC protocol: length word + 24-byte header + payload, and a sans-I/O reader.

Framing (virnetprotocol.x): a big-endian u32 total length that counts itself, then the header
`{unsigned prog; unsigned vers; int proc; type; unsigned serial; status}`, then the XDR payload.
`PacketReader` turns received bytes into packets without doing I/O (feed it what the socket gave).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

LEN_SIZE = 4
HEADER_SIZE = 24
#: VIR_NET_MESSAGE_MAX: the largest packet, length word included
MAX_PACKET = 33554432
#: VIR_NET_MESSAGE_PAYLOAD_MAX
MAX_PAYLOAD = MAX_PACKET - HEADER_SIZE

_HEADER = struct.Struct(">IIIiIii")  # length, prog, vers, proc, type, serial, status


class ProtocolError(ValueError):
    """Bytes that break the framing or header rules; the connection that sent them cannot continue."""


class MessageType(IntEnum):
    """virNetMessageType."""

    CALL = 0
    REPLY = 1
    MESSAGE = 2
    STREAM = 3
    CALL_WITH_FDS = 4
    REPLY_WITH_FDS = 5
    STREAM_HOLE = 6


class MessageStatus(IntEnum):
    """virNetMessageStatus."""

    OK = 0
    ERROR = 1
    CONTINUE = 2


@dataclass(frozen=True)
class Header:
    """virNetMessageHeader."""

    prog: int
    vers: int
    proc: int
    type: MessageType
    serial: int
    status: MessageStatus

    def reply(
        self, status: MessageStatus = MessageStatus.OK, mtype: MessageType = MessageType.REPLY
    ) -> Header:
        """The header of the answer to this call: same program, procedure and serial."""
        return Header(self.prog, self.vers, self.proc, mtype, self.serial, status)


@dataclass(frozen=True)
class Packet:
    """One framed message: header and raw XDR payload."""

    header: Header
    payload: bytes = b""

    def encode(self) -> bytes:
        """The packet as it goes on the wire, length word first."""
        if len(self.payload) > MAX_PAYLOAD:
            raise ProtocolError(f"payload of {len(self.payload)} bytes exceeds the limit of {MAX_PAYLOAD}")
        h = self.header
        return (
            _HEADER.pack(
                LEN_SIZE + HEADER_SIZE + len(self.payload),
                h.prog,
                h.vers,
                h.proc,
                int(h.type),
                h.serial,
                int(h.status),
            )
            + self.payload
        )


def encode_packet(header: Header, payload: bytes = b"") -> bytes:
    """Frame `payload` under `header`."""
    return Packet(header, payload).encode()


def decode_packet(data: bytes) -> Packet:
    """Decode one complete packet (length word included)."""
    reader = PacketReader()
    packets = reader.feed(data)
    if len(packets) != 1 or reader.pending:
        raise ProtocolError("data is not exactly one packet")
    return packets[0]


# header fields to enum members by plain dict lookups: calling the enum class costs more than the rest
# of decoding a small packet
_TYPES = {int(t): t for t in MessageType}
_STATUSES = {int(st): st for st in MessageStatus}
_LENGTH = struct.Struct(">I")


class PacketReader:
    """Accumulates bytes and yields whole packets; raises ProtocolError on framing violations."""

    def __init__(self, max_packet: int = MAX_PACKET) -> None:
        self.max_packet = max_packet
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole packet."""
        return len(self._buf)

    def feed(self, data: bytes | memoryview) -> list[Packet]:
        """Add received bytes; return every packet now complete, in order."""
        self._buf += data
        buf = self._buf
        packets: list[Packet] = []
        start = 0
        end = len(buf)
        while end - start >= LEN_SIZE:
            (length,) = _LENGTH.unpack_from(buf, start)
            if length < LEN_SIZE + HEADER_SIZE:
                raise ProtocolError(f"packet length {length} is shorter than a header")
            if length > self.max_packet:
                raise ProtocolError(f"packet length {length} exceeds maximum {self.max_packet}")
            if end - start < length:
                break
            _, prog, vers, proc, mtype, serial, status = _HEADER.unpack_from(buf, start)
            kind, outcome = _TYPES.get(mtype), _STATUSES.get(status)
            if kind is None or outcome is None:
                raise ProtocolError(f"bad packet header: message type {mtype}, status {status}")
            header = Header(prog, vers, proc, kind, serial, outcome)
            packets.append(Packet(header, bytes(buf[start + LEN_SIZE + HEADER_SIZE : start + length])))
            start += length
        if start:
            del buf[:start]  # once per read, not once per packet
        return packets
