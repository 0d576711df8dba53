"""Packet framing and the sans-I/O reader."""

from __future__ import annotations

import pytest

from virtstack.virt.rpc.message import (
    Header,
    MessageStatus,
    MessageType,
    PacketReader,
    ProtocolError,
    decode_packet,
    encode_packet,
)

# AUTH_LIST call and reply from rpc-trace-9.0.txt (len=28 and len=36)
AUTH_LIST_CALL = "0000001c2000808600000001000000420000000000000000" + "00000000"
AUTH_LIST_REPLY = "000000242000808600000001000000420000000100000000000000000000000100000000"


def test_encode_matches_trace() -> None:
    header = Header(0x20008086, 1, 66, MessageType.CALL, 0, MessageStatus.OK)
    assert encode_packet(header).hex() == AUTH_LIST_CALL
    reply = header.reply()
    assert encode_packet(reply, bytes.fromhex("0000000100000000")).hex() == AUTH_LIST_REPLY


def test_reader_splits_and_joins() -> None:
    data = bytes.fromhex(AUTH_LIST_CALL + AUTH_LIST_REPLY)
    reader = PacketReader()
    packets = []
    for i in range(len(data)):  # one byte at a time
        packets += reader.feed(data[i : i + 1])
    assert [p.header.type for p in packets] == [MessageType.CALL, MessageType.REPLY]
    assert packets[1].payload == bytes.fromhex("0000000100000000")
    assert reader.pending == 0
    assert decode_packet(bytes.fromhex(AUTH_LIST_REPLY)).header.serial == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("00000010" + "00" * 12, "shorter than a header"),
        ("7fffffff", "exceeds maximum"),
        ("0000001c200080860000000100000042000000090000000000000000", "bad packet header"),
    ],
)
def test_reader_rejects_bad_frames(data: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        PacketReader(max_packet=1 << 20).feed(bytes.fromhex(data))
