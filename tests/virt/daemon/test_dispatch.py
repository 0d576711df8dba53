"""The dispatch table: every driver method names a procedure, and values convert to the wire exactly."""

from __future__ import annotations

import inspect
import uuid

from virtstack.virt.daemon import dispatch
from virtstack.virt.drivers.base import DomainRef, HypervisorDriver, NodeInfo
from virtstack.virt.drivers.test import TestDriver
from virtstack.virt.rpc.protocol import REMOTE

NOT_PROCEDURES = {"add_event_listener", "remove_event_listener", "close"}


def _methods(cls: type) -> set[str]:
    return {n for n, v in inspect.getmembers(cls, inspect.isfunction) if not n.startswith("_")}


def test_interface_methods_are_procedures() -> None:
    names = {p.method for p in REMOTE.procedures.values()}
    for cls in (HypervisorDriver, TestDriver):
        missing = _methods(cls) - NOT_PROCEDURES - names
        assert not missing, f"{cls.__name__} methods that no procedure dispatches to: {missing}"


def test_aliases_point_at_real_methods() -> None:
    for proc_name, method in dispatch.ALIASES.items():
        assert proc_name in REMOTE.by_name
        assert hasattr(TestDriver, method)


def test_api_names() -> None:
    assert dispatch.api_name(REMOTE["DOMAIN_GET_XML_DESC"]) == "virDomainGetXMLDesc"
    assert dispatch.api_name(REMOTE["DOMAIN_LOOKUP_BY_UUID"]) == "virDomainLookupByUUID"
    assert dispatch.api_name(REMOTE["CONNECT_DOMAIN_XML_TO_NATIVE"]) == "virConnectDomainXMLToNative"
    assert dispatch.api_name(REMOTE["NETWORK_GET_DHCP_LEASES"]) == "virNetworkGetDHCPLeases"
    assert dispatch.api_name(REMOTE["DOMAIN_DESTROY"]) == "virDomainDestroy"


def test_results_to_wire() -> None:
    # NODE_GET_INFO: a dataclass into a struct with a fixed char[32] model (libvirtd's reply, 160 bytes)
    info = NodeInfo("i686", 3145728, 16, 1400, 2, 2, 2, 2)
    wire = dispatch.ret_to_wire(REMOTE["NODE_GET_INFO"].ret, info)
    assert wire["model"][:5] == [105, 54, 56, 54, 0] and len(wire["model"]) == 32
    assert len(REMOTE["NODE_GET_INFO"].encode_ret(wire)) == 160
    # NODE_GET_SECURITY_MODEL: C strings with their NUL, as in rpc-trace-9.0.txt
    payload = REMOTE["NODE_GET_SECURITY_MODEL"].encode_ret(
        dispatch.ret_to_wire(REMOTE["NODE_GET_SECURITY_MODEL"].ret, ("testSecurity", ""))
    )
    assert payload.hex() == (
        "0000000d000000740000006500000073000000740000005300000065000000630000007500000072"
        "000000690000007400000079000000000000000100000000"
    )
    # a handle and a bool
    ref = DomainRef("test", uuid.UUID("6695eb01-f6a4-8304-79aa-97f2502e193f"), 1)
    assert dispatch.ret_to_wire(REMOTE["DOMAIN_LOOKUP_BY_NAME"].ret, ref) == {
        "dom": {"name": "test", "uuid": ref.uuid.bytes, "id": 1}
    }
    assert dispatch.ret_to_wire(REMOTE["DOMAIN_IS_ACTIVE"].ret, True) == {"active": 1}


def test_args_from_wire() -> None:
    ref = DomainRef("test", uuid.UUID("6695eb01-f6a4-8304-79aa-97f2502e193f"), 1)
    proc = REMOTE["DOMAIN_GET_STATE"]
    value = proc.decode_args(proc.encode_args({"dom": dispatch.domain_to_wire(ref), "flags": 0}))
    assert dispatch.args_from_wire(proc, value) == [ref, 0]
    proc = REMOTE["DOMAIN_LOOKUP_BY_UUID"]
    assert dispatch.args_from_wire(proc, {"uuid": ref.uuid.bytes}) == [ref.uuid]


def test_connection_handlers_name_real_procedures() -> None:
    from virtstack.virt.daemon.connection import Connection

    handlers = [n.removeprefix("_proc_").upper() for n in vars(Connection) if n.startswith("_proc_")]
    assert handlers, "no special handlers found"
    unknown = [h for h in handlers if h not in REMOTE.by_name]
    assert not unknown, f"handlers for procedures remote_protocol.x does not define: {unknown}"


def test_error_domains_follow_libvirts_source_files() -> None:
    from virtstack.virt.errors import ErrorDomain

    assert dispatch.api_error_domain(REMOTE["DOMAIN_GET_VCPUS"]) == ErrorDomain.DOMAIN
    assert dispatch.api_error_domain(REMOTE["CONNECT_DOMAIN_XML_TO_NATIVE"]) == ErrorDomain.DOMAIN
    assert dispatch.api_error_domain(REMOTE["NETWORK_GET_DHCP_LEASES"]) == ErrorDomain.NETWORK
    assert dispatch.api_error_domain(REMOTE["NODE_GET_INFO"]) == ErrorDomain.NONE


def test_list_all_domains_reply_matches_the_generic_encoder() -> None:
    proc = REMOTE["CONNECT_LIST_ALL_DOMAINS"]
    # names of every length modulo 4 (padding), non-ASCII names, active and inactive ids
    refs = [
        DomainRef(name, uuid.uuid5(uuid.NAMESPACE_DNS, name), dom_id)
        for name, dom_id in [("a", -1), ("ab", 3), ("abc", -1), ("abcd", 17), ("vm-é", -1), ("日本", 2**31 - 1)]
    ]
    for need_results in (True, False):
        wire = [dispatch.domain_to_wire(r) for r in refs] if need_results else []
        expected = proc.encode_ret({"domains": wire, "ret": len(refs)})
        assert dispatch.list_all_domains_reply(refs, need_results) == expected
    assert proc.decode_ret(dispatch.list_all_domains_reply(refs, True))["domains"][5]["name"] == "日本"
    assert dispatch.list_all_domains_reply([], True) == proc.encode_ret({"domains": [], "ret": 0})
