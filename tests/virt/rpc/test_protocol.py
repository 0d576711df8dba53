"""The procedure table built from libvirt's .x files, checked against bytes real libvirtd 9.0 sent."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from virtstack.virt.rpc import protocol, xdr
from virtstack.virt.rpc.protocol import REMOTE

# payloads from rpc-trace-9.0.txt (virsh / libvirt-python against libvirtd 9.0, test:///default)
LIST_ALL_REPLY = "0000000100000004746573746695eb01f6a4830479aa97f2502e193f0000000100000001"
GET_INFO_REPLY = "00000001000000000080000000000000002000000000000218eb173f7a554248"
TEST_UUID = uuid.UUID("6695eb01-f6a4-8304-79aa-97f2502e193f")


def test_procedure_numbers_and_names() -> None:
    assert REMOTE.number == protocol.REMOTE_PROGRAM == 0x20008086
    assert protocol.KEEPALIVE.number == 0x6B656570
    assert protocol.QEMU.number == 0x20008087
    assert REMOTE.procedures[34].name == "DOMAIN_SUSPEND"
    assert REMOTE.procedures[34].method == "domain_suspend"
    assert REMOTE["DOMAIN_EVENT_CALLBACK_LIFECYCLE"].number == 318
    assert protocol.KEEPALIVE.procedures[1].name == "PING"
    assert len(REMOTE.procedures) == 443


def test_list_all_domains_reply_decodes() -> None:
    ret = REMOTE["CONNECT_LIST_ALL_DOMAINS"].decode_ret(bytes.fromhex(LIST_ALL_REPLY))
    assert ret == {"domains": [{"name": "test", "uuid": TEST_UUID.bytes, "id": 1}], "ret": 1}
    assert REMOTE["CONNECT_LIST_ALL_DOMAINS"].encode_ret(ret).hex() == LIST_ALL_REPLY


def test_get_info_reply_uses_a_word_per_char() -> None:
    ret = REMOTE["DOMAIN_GET_INFO"].decode_ret(bytes.fromhex(GET_INFO_REPLY))
    assert ret["state"] == 1 and ret["maxMem"] == 8388608 and ret["memory"] == 2097152
    assert ret["nrVirtCpu"] == 2


def test_node_get_info_reply_is_160_bytes() -> None:
    ret = REMOTE["NODE_GET_INFO"].ret.default()
    assert len(REMOTE["NODE_GET_INFO"].encode_ret(ret)) == 160


def test_annotations() -> None:
    assert REMOTE["DOMAIN_OPEN_CONSOLE"].readstream
    assert not REMOTE["DOMAIN_SUSPEND"].read_only_ok
    assert not REMOTE["DOMAIN_DEFINE_XML"].read_only_ok
    assert REMOTE["DOMAIN_GET_XML_DESC"].read_only_ok
    assert REMOTE["CONNECT_LIST_ALL_DOMAINS"].read_only_ok
    assert REMOTE["AUTH_LIST"].read_only_ok
    assert REMOTE["DOMAIN_DESTROY"].priority_high


def test_void_procedures() -> None:
    assert REMOTE["DOMAIN_SUSPEND"].encode_ret(None) == b""
    assert REMOTE["AUTH_LIST"].encode_args(None) == b""


def _signature(tables: protocol.Tables) -> list[tuple[int, int, str, bool]]:
    return [
        (prog.number, proc.number, proc.name, proc.read_only_ok)
        for prog in tables[1].values()
        for proc in prog.procedures.values()
    ]


def test_tables_cache_is_written_then_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = protocol.load_tables(tmp_path)
    (entry,) = tmp_path.glob("*.pickle")
    assert entry.stat().st_mode & 0o777 == 0o644

    def no_parse() -> protocol.Tables:
        raise AssertionError("a valid cache entry must not be parsed again")

    monkeypatch.setattr(protocol, "parse_tables", no_parse)
    cached = protocol.load_tables(tmp_path)
    assert cached is not parsed and _signature(cached) == _signature(parsed)
    remote = cached[1][protocol.REMOTE_PROGRAM]
    # the predefined types come back as the module's singletons, and codecs still agree with libvirtd
    assert remote["DOMAIN_GET_INFO"].ret.fields[1][1] is xdr.UHYPER  # type: ignore[attr-defined]
    ret = remote["CONNECT_LIST_ALL_DOMAINS"].decode_ret(bytes.fromhex(LIST_ALL_REPLY))
    assert remote["CONNECT_LIST_ALL_DOMAINS"].encode_ret(ret).hex() == LIST_ALL_REPLY
    assert cached[0].constants["REMOTE_DOMAIN_LIST_MAX"] == protocol.constant("REMOTE_DOMAIN_LIST_MAX")


def test_corrupt_cache_entry_is_replaced(tmp_path: Path) -> None:
    protocol.load_tables(tmp_path)
    (entry,) = tmp_path.glob("*.pickle")
    entry.write_bytes(b"not a pickle")
    tables = protocol.load_tables(tmp_path)
    assert len(tables[1][protocol.REMOTE_PROGRAM].procedures) == 443
    assert entry.read_bytes() != b"not a pickle"


def test_cache_entry_others_may_write_is_not_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    protocol.load_tables(tmp_path)
    (entry,) = tmp_path.glob("*.pickle")
    entry.chmod(0o666)
    parses: list[int] = []
    real_parse = protocol.parse_tables

    def counting_parse() -> protocol.Tables:
        parses.append(1)
        return real_parse()

    monkeypatch.setattr(protocol, "parse_tables", counting_parse)
    protocol.load_tables(tmp_path)
    assert parses == [1]


def test_unwritable_cache_still_gives_tables(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    tables = protocol.load_tables(blocker / "cache")  # a directory cannot be made under a file
    assert len(tables[1][protocol.REMOTE_PROGRAM].procedures) == 443


def test_read_only_rules_follow_the_acl_annotations() -> None:
    """Reads are allowed on a read-only connection; secrets and state changes are not; a read that only
    reveals secrets when asked (`read_secure:FLAG`) is allowed unless that flag is set."""
    assert REMOTE["DOMAIN_GET_INFO"].read_only_ok and not REMOTE["DOMAIN_GET_INFO"].secure_flags
    assert not REMOTE["DOMAIN_DESTROY"].read_only_ok
    assert not REMOTE["SECRET_GET_VALUE"].read_only_ok  # unconditional read_secure
    for name in ("DOMAIN_GET_XML_DESC", "DOMAIN_SNAPSHOT_GET_XML_DESC", "DOMAIN_CHECKPOINT_GET_XML_DESC"):
        assert REMOTE[name].read_only_ok and REMOTE[name].secure_flags == 1, name
