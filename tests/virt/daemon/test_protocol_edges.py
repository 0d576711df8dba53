"""Wire-level behaviour with a raw socket: libvirtd's answers to bad calls, limits, keepalive."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.virt.daemon.conftest import RunningDaemon, start_daemon, stop_daemon

from virtstack.virt.errors import ErrorCode, ErrorDomain
from virtstack.virt.rpc.errors import decode_error
from virtstack.virt.rpc.message import Header, MessageStatus, MessageType, Packet, PacketReader, encode_packet
from virtstack.virt.rpc.protocol import KEEPALIVE, KEEPALIVE_PROGRAM, REMOTE


class RawClient:
    """Just enough of a client to send exact packets and read what comes back."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(20)
        self.sock.connect(str(path))
        self.reader = PacketReader()
        self.serial = 0
        self.queue: list[Packet] = []

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_call(self, proc: int, payload: bytes = b"", prog: int = REMOTE.number) -> int:
        serial = self.serial
        self.serial += 1
        self.send_raw(
            encode_packet(Header(prog, 1, proc, MessageType.CALL, serial, MessageStatus.OK), payload)
        )
        return serial

    def recv(self) -> Packet | None:
        while not self.queue:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.queue += self.reader.feed(data)
        return self.queue.pop(0)

    def call(self, name: str, args: Any = None) -> Packet:
        proc = REMOTE[name]
        serial = self.send_call(proc.number, proc.encode_args(args))
        pkt = self.recv()
        assert pkt is not None and pkt.header.serial == serial
        return pkt

    def open(self, uri: str = "test:///default") -> None:
        assert self.call("CONNECT_OPEN", {"name": uri, "flags": 0}).header.status == MessageStatus.OK

    def closed_by_peer(self) -> bool:
        try:
            return self.recv() is None
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def client(daemon: RunningDaemon) -> Iterator[RawClient]:
    c = RawClient(daemon.socket)
    yield c
    c.close()


def _error(pkt: Packet) -> tuple[int, int, str]:
    assert pkt.header.status == MessageStatus.ERROR and pkt.header.type == MessageType.REPLY
    err = decode_error(pkt.payload)
    return err.code, err.domain, err.message


def test_unknown_procedure_keeps_the_connection(client: RawClient) -> None:
    serial = client.send_call(9999)
    pkt = client.recv()
    assert pkt is not None and pkt.header.serial == serial
    assert _error(pkt) == (ErrorCode.RPC, ErrorDomain.RPC, "unknown procedure: 9999")
    assert client.call("AUTH_LIST").payload == bytes.fromhex("0000000100000000")


def test_unknown_program(client: RawClient) -> None:
    client.send_call(1, prog=0x12345678)
    pkt = client.recv()
    assert pkt is not None and _error(pkt)[0] == ErrorCode.RPC


def test_open_rules(client: RawClient) -> None:
    assert _error(client.call("CONNECT_GET_TYPE")) == (
        ErrorCode.INTERNAL_ERROR, ErrorDomain.RPC, "internal error: connection not open"
    )  # fmt: skip
    client.open()
    assert _error(client.call("CONNECT_OPEN", {"name": "test:///default", "flags": 0}))[2] == (
        "internal error: connection already open"
    )
    assert REMOTE["CONNECT_GET_TYPE"].decode_ret(client.call("CONNECT_GET_TYPE").payload) == {"type": "TEST"}


def test_procedure_the_driver_lacks_is_no_support(client: RawClient) -> None:
    client.open()
    dom = REMOTE["DOMAIN_LOOKUP_BY_NAME"].decode_ret(
        client.call("DOMAIN_LOOKUP_BY_NAME", {"name": "test"}).payload
    )
    pkt = client.call("DOMAIN_GET_VCPUS", {"dom": dom["dom"], "maxinfo": 2, "maplen": 1})
    assert _error(pkt) == (
        ErrorCode.NO_SUPPORT,
        ErrorDomain.DOMAIN,
        "this function is not supported by the connection driver: virDomainGetVcpus",
    )
    assert client.call("CONNECT_GET_VERSION").header.status == MessageStatus.OK


def test_list_all_count_only(client: RawClient) -> None:
    client.open()
    ret = REMOTE["CONNECT_LIST_ALL_DOMAINS"].decode_ret(
        client.call("CONNECT_LIST_ALL_DOMAINS", {"need_results": 0, "flags": 0}).payload
    )
    assert ret == {"domains": [], "ret": 1}


def test_keepalive_ping_gets_pong(client: RawClient) -> None:
    ping = Header(KEEPALIVE_PROGRAM, 1, KEEPALIVE["PING"].number, MessageType.MESSAGE, 0, MessageStatus.OK)
    client.send_raw(encode_packet(ping))
    pkt = client.recv()
    assert pkt is not None
    assert (pkt.header.prog, pkt.header.proc, pkt.header.type) == (KEEPALIVE_PROGRAM, 2, MessageType.MESSAGE)


def test_malformed_packet_closes_only_that_connection(daemon: RunningDaemon) -> None:
    bystander = RawClient(daemon.socket)
    bad_frame, bad_payload = RawClient(daemon.socket), RawClient(daemon.socket)
    try:
        bystander.open()
        bad_frame.send_raw(struct.pack(">I", 8) + b"\0" * 4)  # shorter than a header
        assert bad_frame.closed_by_peer()
        open_proc = REMOTE["CONNECT_OPEN"].number
        bad_payload.send_call(open_proc, b"\x7f\xff\xff\xff")  # string length past the data
        assert bad_payload.closed_by_peer()
        assert bystander.call("CONNECT_GET_TYPE").header.status == MessageStatus.OK
    finally:
        for c in (bystander, bad_frame, bad_payload):
            c.close()


@pytest.fixture(scope="module")
def small_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    d = start_daemon(
        tmp_path_factory.mktemp("vsd-small"),
        "--max-packet",
        "4096",
        "--max-clients",
        "3",
        "--max-requests",
        "2",
        "--keepalive-interval",
        "0.3",
        "--keepalive-count",
        "2",
    )
    yield d
    stop_daemon(d)
    assert d.proc.returncode == 0


def test_packet_size_limit(small_daemon: RunningDaemon) -> None:
    c = RawClient(small_daemon.socket)
    try:
        c.open()
        xml = "<domain>" + "x" * 5000 + "</domain>"
        c.send_call(REMOTE["DOMAIN_DEFINE_XML"].number, REMOTE["DOMAIN_DEFINE_XML"].encode_args({"xml": xml}))
        assert c.closed_by_peer()
        assert "exceeds maximum 4096" in small_daemon.log.read_text()
    finally:
        c.close()


def test_client_limit(small_daemon: RunningDaemon) -> None:
    clients = [RawClient(small_daemon.socket) for _ in range(3)]
    try:
        for c in clients:
            c.call("AUTH_LIST")
        extra = RawClient(small_daemon.socket)
        assert extra.closed_by_peer()
        extra.close()
        assert "too many clients (max_clients=3)" in small_daemon.log.read_text()
        clients.pop().close()
        for _ in range(100):  # the daemon notices the close asynchronously
            again = RawClient(small_daemon.socket)
            again.send_call(REMOTE["AUTH_LIST"].number)
            ok = not again.closed_by_peer()
            again.close()
            if ok:
                break
        assert ok
    finally:
        for c in clients:
            c.close()


def test_pipelined_calls_beyond_max_requests_all_answered(small_daemon: RunningDaemon) -> None:
    c = RawClient(small_daemon.socket)
    try:
        c.open()
        proc = REMOTE["CONNECT_GET_HOSTNAME"]
        serials = {c.send_call(proc.number) for _ in range(30)}
        got = set()
        for _ in serials:
            pkt = c.recv()
            assert pkt is not None and pkt.header.status == MessageStatus.OK
            got.add(pkt.header.serial)
        assert got == serials
    finally:
        c.close()


def test_packets_split_and_coalesced_across_reads(client: RawClient) -> None:
    """The daemon frames packets itself: one call sent a byte at a time, then a keepalive ping, two calls
    and the first half of a third in one write, the rest later; every answer comes, in order."""
    client.open()
    lookup = REMOTE["DOMAIN_LOOKUP_BY_NAME"]
    packet = encode_packet(
        Header(REMOTE.number, 1, lookup.number, MessageType.CALL, 7, MessageStatus.OK),
        lookup.encode_args({"name": "test"}),
    )
    for i in range(len(packet)):
        client.send_raw(packet[i : i + 1])
    reply = client.recv()
    assert reply is not None and reply.header.serial == 7 and reply.header.status == MessageStatus.OK
    assert lookup.decode_ret(reply.payload)["dom"]["name"] == "test"

    hostname = REMOTE["CONNECT_GET_HOSTNAME"].number
    ping = Header(KEEPALIVE_PROGRAM, 1, KEEPALIVE["PING"].number, MessageType.MESSAGE, 0, MessageStatus.OK)
    calls = [
        encode_packet(Header(REMOTE.number, 1, hostname, MessageType.CALL, serial, MessageStatus.OK))
        for serial in (8, 9, 10)
    ]
    burst = encode_packet(ping) + calls[0] + calls[1] + calls[2][:10]
    client.send_raw(burst)
    client.send_raw(calls[2][10:])
    answers = [client.recv() for _ in range(4)]
    got = [(a.header.proc, a.header.serial) for a in answers if a is not None]
    assert len(got) == 4 and got[0][0] == KEEPALIVE["PONG"].number
    assert sorted(serial for _, serial in got[1:]) == [8, 9, 10]


def _messages(c: RawClient, want: dict[int, int]) -> dict[int, list[dict[str, Any]]]:
    """Read packets until `want[proc]` MESSAGE packets of each proc arrived; replies are dropped."""
    out: dict[int, list[dict[str, Any]]] = {proc: [] for proc in want}
    while any(len(out[p]) < n for p, n in want.items()):
        pkt = c.recv()
        assert pkt is not None
        if pkt.header.type == MessageType.MESSAGE and pkt.header.proc in out:
            assert pkt.header.serial == 0
            out[pkt.header.proc].append(REMOTE.procedures[pkt.header.proc].decode_args(pkt.payload))
    return out


def test_events_callback_filter_and_legacy(daemon: RunningDaemon) -> None:
    watcher, actor = RawClient(daemon.socket), RawClient(daemon.socket)
    try:
        watcher.open()
        actor.open()
        test_dom = REMOTE["DOMAIN_LOOKUP_BY_NAME"].decode_ret(
            watcher.call("DOMAIN_LOOKUP_BY_NAME", {"name": "test"}).payload
        )
        only_test = REMOTE["CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY"].decode_ret(
            watcher.call(
                "CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY", {"eventID": 0, "dom": test_dom["dom"]}
            ).payload
        )["callbackID"]
        assert (
            watcher.call("CONNECT_DOMAIN_EVENT_REGISTER_ANY", {"eventID": 0}).header.status
            == MessageStatus.OK
        )
        xml = "<domain type='test'><name>ev1</name><memory>1024</memory><os><type>hvm</type></os></domain>"
        assert actor.call("DOMAIN_DEFINE_XML", {"xml": xml}).header.status == MessageStatus.OK
        assert actor.call("DOMAIN_SUSPEND", test_dom).header.status == MessageStatus.OK
        assert actor.call("DOMAIN_RESUME", test_dom).header.status == MessageStatus.OK
        legacy_proc, cb_proc = (
            REMOTE["DOMAIN_EVENT_LIFECYCLE"].number,
            REMOTE["DOMAIN_EVENT_CALLBACK_LIFECYCLE"].number,
        )
        got = _messages(watcher, {legacy_proc: 3, cb_proc: 2})
        legacy, filtered = got[legacy_proc], got[cb_proc]
        assert [(m["dom"]["name"], m["event"]) for m in legacy] == [("ev1", 0), ("test", 3), ("test", 4)]
        assert [(m["callbackID"], m["msg"]["dom"]["name"], m["msg"]["event"]) for m in filtered] == [
            (only_test, "test", 3),
            (only_test, "test", 4),
        ]
        pkt = watcher.call("CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY", {"callbackID": only_test})
        assert pkt.header.status == MessageStatus.OK
        pkt = watcher.call("CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY", {"callbackID": only_test})
        assert _error(pkt)[0] == ErrorCode.INVALID_ARG
        dom = REMOTE["DOMAIN_LOOKUP_BY_NAME"].decode_ret(
            actor.call("DOMAIN_LOOKUP_BY_NAME", {"name": "ev1"}).payload
        )
        assert actor.call("DOMAIN_UNDEFINE", dom).header.status == MessageStatus.OK
    finally:
        watcher.close()
        actor.close()


def test_server_pings_keepalive_clients_and_drops_silent_ones(small_daemon: RunningDaemon) -> None:
    c = RawClient(small_daemon.socket)
    try:
        pkt = c.call("CONNECT_SUPPORTS_FEATURE", {"feature": 10})  # VIR_DRV_FEATURE_PROGRAM_KEEPALIVE
        assert pkt.payload == bytes.fromhex("00000001")
        pings = 0
        while True:  # never answer: the daemon pings, then gives up after interval * (count + 1)
            pkt = c.recv()
            if pkt is None:
                break
            assert (pkt.header.prog, pkt.header.proc) == (KEEPALIVE_PROGRAM, KEEPALIVE["PING"].number)
            pings += 1
        assert pings >= 2
        assert "no keepalive response" in small_daemon.log.read_text()
    finally:
        c.close()
