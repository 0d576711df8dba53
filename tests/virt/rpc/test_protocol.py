"""The procedure table built from libvirt's .x files, checked against bytes real libvirtd 9.0 sent."""

from __future__ import annotations

import uuid

from virtstack.virt.rpc import protocol
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
