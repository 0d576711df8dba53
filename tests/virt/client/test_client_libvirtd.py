"""The client against the real libvirtd 9.0, compared call by call with the real libvirt-python."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from virtstack.virt.client import Connection, VirtError, connect
from virtstack.virt.drivers.base import DomainState, ListFlags, XmlFlags

libvirt = pytest.importorskip("libvirt", reason="libvirt-python (python3-libvirt) is not installed")

VM_XML = """<domain type='test'>
  <name>vsclient</name>
  <uuid>2b7a3f51-7d4c-4b4e-9d59-2d0c1c7e8a11</uuid>
  <memory>131072</memory>
  <vcpu>1</vcpu>
  <os><type>hvm</type></os>
</domain>
"""


@pytest.fixture
def conn(test_uri: str) -> Iterator[Connection]:
    c = connect(test_uri)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def real(test_uri: str) -> Iterator[object]:
    libvirt.registerErrorHandler(lambda *_: None, None)
    c = libvirt.open(test_uri)
    try:
        yield c
    finally:
        c.close()


def test_host_calls_match_libvirt_python(conn: Connection, real: object) -> None:
    assert conn.get_type() == real.getType()
    assert conn.get_version() == real.getVersion()
    assert conn.get_lib_version() == real.getLibVersion()
    assert conn.get_hostname() == real.getHostname()
    info = conn.node_get_info()
    assert [info.model, info.memory_kib // 1024, info.cpus, info.mhz, info.nodes, info.sockets, info.cores,
            info.threads] == real.getInfo()
    assert conn.get_capabilities() == real.getCapabilities()
    model = conn.node_get_security_model()
    assert [model.model, model.doi] == real.getSecurityModel()


def test_domain_queries_match_libvirt_python(conn: Connection, real: object) -> None:
    ours = conn.list_all_domains()
    theirs = real.listAllDomains()
    assert [(d.name, d.uuid_string(), d.id) for d in ours] == [(d.name(), d.UUIDString(), d.ID()) for d in theirs]
    dom = conn.lookup_by_name("test")
    rdom = real.lookupByName("test")
    assert dom.state() == tuple(rdom.state())
    info, rinfo = dom.info(), rdom.info()
    assert [info.state, info.max_mem_kib, info.memory_kib, info.nr_virt_cpu] == rinfo[:4]
    assert dom.xml_desc() == rdom.XMLDesc()
    assert dom.xml_desc(XmlFlags.INACTIVE | XmlFlags.SECURE) == rdom.XMLDesc(3)
    assert dom.os_type() == rdom.OSType()
    assert dom.max_memory() == rdom.maxMemory()
    assert dom.is_active() == bool(rdom.isActive())
    assert dom.is_persistent() == bool(rdom.isPersistent())
    assert dom.autostart() == bool(rdom.autostart())
    label = dom.security_label()
    assert [label.label, int(label.enforcing)] == rdom.securityLabel()
    assert conn.lookup_by_uuid(dom.uuid).name == "test"
    assert conn.lookup_by_uuid(str(dom.uuid)).id == dom.id
    assert conn.lookup_by_id(dom.id).uuid == dom.uuid


def _error_triple(exc: object) -> tuple[int, int, str]:
    return exc.get_error_code(), exc.get_error_domain(), exc.get_error_message()


@pytest.mark.parametrize(
    "call",
    [
        ("lookup_by_name", "lookupByName", "nosuch"),
        ("lookup_by_uuid", "lookupByUUIDString", "00000000-0000-0000-0000-000000000001"),
        ("lookup_by_id", "lookupByID", 4242),
        ("define_xml", "defineXML", "<domain type='test'><name>x</name></domain>"),
        ("define_xml", "defineXML", "<domain"),
    ],
    ids=["name", "uuid", "id", "no-os-type", "malformed"],
)
def test_errors_carry_libvirts_code_domain_and_message(conn: Connection, real: object, call: tuple[str, str, object]) -> None:
    ours_name, theirs_name, arg = call
    with pytest.raises(libvirt.libvirtError) as theirs:
        getattr(real, theirs_name)(arg)
    with pytest.raises(VirtError) as ours:
        getattr(conn, ours_name)(arg)
    assert (ours.value.code, ours.value.domain, ours.value.message) == _error_triple(theirs.value)


def test_lifecycle_on_the_test_driver(conn: Connection) -> None:
    dom = conn.define_xml(VM_XML)
    try:
        assert (dom.name, dom.id, dom.is_persistent()) == ("vsclient", -1, True)
        assert dom.state() == (DomainState.SHUTOFF, 0)
        dom.create()
        assert dom.id > 0, "create() must refresh the id like libvirt's client does"
        assert dom.state() == (DomainState.RUNNING, 1)
        dom.suspend()
        assert dom.state() == (DomainState.PAUSED, 1)
        dom.resume()
        assert dom.state() == (DomainState.RUNNING, 5)
        with pytest.raises(VirtError) as err:
            dom.resume()
        assert err.value.message == "internal error: domain 'vsclient' not paused"
        dom.reboot()
        dom.shutdown()
        assert dom.state() == (DomainState.SHUTOFF, 1)
        dom.create()
        dom.destroy()
        assert dom.state() == (DomainState.SHUTOFF, 2)
        assert not dom.is_active()
        dom.set_autostart(True)
        assert dom.autostart()
        dom.set_autostart(False)
        inactive = conn.list_all_domains(ListFlags.INACTIVE)
        assert [d.name for d in inactive] == ["vsclient"]
    finally:
        dom.undefine()
    with pytest.raises(VirtError) as gone:
        conn.lookup_by_name("vsclient")
    assert gone.value.code == 42


def test_create_xml_makes_a_transient_running_domain(conn: Connection) -> None:
    dom = conn.create_xml(VM_XML)
    try:
        assert dom.id > 0
        assert dom.is_active() and not dom.is_persistent()
    finally:
        dom.destroy()
    with pytest.raises(VirtError):
        conn.lookup_by_uuid(uuid.UUID("2b7a3f51-7d4c-4b4e-9d59-2d0c1c7e8a11"))


def test_readonly_connection_refuses_mutations_before_sending(test_uri: str, real: object) -> None:
    ro = connect(test_uri, readonly=True)
    try:
        dom = ro.lookup_by_name("test")
        assert dom.state()[0] == DomainState.RUNNING
        with pytest.raises(VirtError) as ours:
            dom.suspend()
        rro = libvirt.openReadOnly(test_uri)
        try:
            with pytest.raises(libvirt.libvirtError) as theirs:
                rro.lookupByName("test").suspend()
        finally:
            rro.close()
        assert (ours.value.code, ours.value.domain, ours.value.message) == _error_triple(theirs.value)
    finally:
        ro.close()


def test_connect_failure_reads_like_libvirt(tmp_path: Path) -> None:
    missing = tmp_path / "no-sock"
    uri = f"test+unix:///default?socket={missing}"
    with pytest.raises(VirtError) as ours:
        connect(uri)
    with pytest.raises(libvirt.libvirtError) as theirs:
        libvirt.open(uri)
    assert (ours.value.code, ours.value.domain, ours.value.message) == _error_triple(theirs.value)
