"""The real libvirt-python (9.0) against virtstackd: API calls, typed errors, lifecycle events, keepalive."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from tests.virt.daemon.conftest import RunningDaemon

libvirt = pytest.importorskip("libvirt", reason="libvirt-python (python3-libvirt) is not importable")

XML = (
    "<domain type='test'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
    "<os><type>hvm</type></os></domain>"
)


@pytest.fixture
def conn(daemon: RunningDaemon) -> Iterator[object]:
    c = libvirt.open(daemon.uri())
    yield c
    c.close()


def test_connection_calls(conn: object) -> None:
    assert conn.getType() == "TEST"  # type: ignore[attr-defined]
    assert conn.getLibVersion() == 9000000  # type: ignore[attr-defined]
    assert conn.getVersion() == 2  # type: ignore[attr-defined]
    assert conn.getInfo() == ["i686", 3072, 16, 1400, 2, 2, 2, 2]  # type: ignore[attr-defined]
    assert conn.getURI() == "test:///default" or "default" in conn.getURI()  # type: ignore[attr-defined]
    assert conn.isSecure() == 1  # type: ignore[attr-defined]
    assert "<capabilities>" in conn.getCapabilities()  # type: ignore[attr-defined]
    assert conn.listDomainsID() == [1]  # type: ignore[attr-defined]
    assert conn.numOfDefinedDomains() == 0  # type: ignore[attr-defined]


def test_domain_calls(conn: object) -> None:
    dom = conn.lookupByName("test")  # type: ignore[attr-defined]
    assert dom.UUIDString() == "6695eb01-f6a4-8304-79aa-97f2502e193f"
    assert dom.ID() == 1
    info = dom.info()
    assert info[:4] == [1, 8388608, 2097152, 2]
    assert dom.state() == [1, 0]
    assert dom.isActive() == 1 and dom.isPersistent() == 1
    assert dom.OSType() == "linux" and dom.maxMemory() == 8388608
    assert conn.lookupByUUIDString(dom.UUIDString()).name() == "test"  # type: ignore[attr-defined]
    assert conn.lookupByID(1).name() == "test"  # type: ignore[attr-defined]
    assert [d.name() for d in conn.listAllDomains()] == ["test"]  # type: ignore[attr-defined]
    assert "<name>test</name>" in dom.XMLDesc(0)


def test_errors_are_typed(conn: object) -> None:
    with pytest.raises(libvirt.libvirtError) as exc:
        conn.lookupByName("nosuch")  # type: ignore[attr-defined]
    err = exc.value
    assert err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN
    assert err.get_error_domain() == libvirt.VIR_FROM_TEST
    assert err.get_error_message() == "Domain not found"  # test_driver.c gives no detail
    with pytest.raises(libvirt.libvirtError) as exc:
        conn.defineXML("<domain type='nosuchtype'><name>x</name></domain>")  # type: ignore[attr-defined]
    assert exc.value.get_error_code() == libvirt.VIR_ERR_CONFIG_UNSUPPORTED
    assert exc.value.get_error_message() == "unsupported configuration: invalid domain type nosuchtype"
    with pytest.raises(libvirt.libvirtError) as exc:
        conn.defineXML("<domain type='test'><name>x</name>")  # type: ignore[attr-defined]
    assert exc.value.get_error_code() == libvirt.VIR_ERR_XML_DETAIL
    with pytest.raises(libvirt.libvirtError) as exc:
        conn.lookupByName("test").create()  # type: ignore[attr-defined]
    assert exc.value.get_error_code() == libvirt.VIR_ERR_INTERNAL_ERROR
    with pytest.raises(libvirt.libvirtError) as exc:
        conn.lookupByName("test").openConsole(None, conn.newStream(0), 0)  # type: ignore[attr-defined]
    assert exc.value.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT
    assert "virDomainOpenConsole" in exc.value.get_error_message()


def test_read_only_connection(daemon: RunningDaemon) -> None:
    c = libvirt.openReadOnly(daemon.uri(ro=True))
    try:
        dom = c.lookupByName("test")
        assert dom.info()[0] == 1
        with pytest.raises(libvirt.libvirtError) as exc:
            dom.suspend()
        assert exc.value.get_error_code() == libvirt.VIR_ERR_OPERATION_DENIED
    finally:
        c.close()


@pytest.mark.usefixtures("event_loop_thread")
def test_lifecycle_events(daemon: RunningDaemon) -> None:
    c = libvirt.open(daemon.uri())
    seen: list[tuple[str, int, int]] = []
    got = threading.Condition()

    def callback(conn: object, dom: object, event: int, detail: int, opaque: object) -> None:
        with got:
            seen.append((dom.name(), event, detail))  # type: ignore[attr-defined]
            got.notify_all()

    cb = c.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, callback, None)
    try:
        dom = c.defineXML(XML.format(name="evm"))
        dom.create()
        dom.suspend()
        dom.resume()
        dom.destroy()
        dom.undefine()
        E = libvirt
        want = [
            ("evm", E.VIR_DOMAIN_EVENT_DEFINED, E.VIR_DOMAIN_EVENT_DEFINED_ADDED),
            ("evm", E.VIR_DOMAIN_EVENT_STARTED, E.VIR_DOMAIN_EVENT_STARTED_BOOTED),
            ("evm", E.VIR_DOMAIN_EVENT_SUSPENDED, E.VIR_DOMAIN_EVENT_SUSPENDED_PAUSED),
            ("evm", E.VIR_DOMAIN_EVENT_RESUMED, E.VIR_DOMAIN_EVENT_RESUMED_UNPAUSED),
            ("evm", E.VIR_DOMAIN_EVENT_STOPPED, E.VIR_DOMAIN_EVENT_STOPPED_DESTROYED),
            ("evm", E.VIR_DOMAIN_EVENT_UNDEFINED, E.VIR_DOMAIN_EVENT_UNDEFINED_REMOVED),
        ]
        with got:
            assert got.wait_for(lambda: len(seen) >= len(want), timeout=30), seen
        assert seen == want
    finally:
        c.domainEventDeregisterAny(cb)
        c.close()


@pytest.mark.usefixtures("event_loop_thread")
def test_keepalive_keeps_an_idle_client(daemon: RunningDaemon) -> None:
    c = libvirt.open(daemon.uri())
    try:
        c.setKeepAlive(1, 2)  # client pings after 1 s idle; the daemon answers PONG
        time.sleep(3.5)
        assert c.isAlive() == 1
        assert c.lookupByName("test").ID() == 1
    finally:
        c.close()


def _error_scenario(c: object) -> list[object]:
    """Calls that fail (or surprisingly succeed) on libvirt's test driver, with what each returned."""
    out: list[object] = []

    def attempt(f: object) -> None:
        try:
            out.append(("ok", f()))  # type: ignore[operator]
        except libvirt.libvirtError as e:
            out.append((e.get_error_code(), e.get_error_domain(), e.get_error_message()))

    x = "<domain type='test'><name>{}</name>{}<memory>1024</memory><os><type>hvm</type></os></domain>"
    attempt(lambda: c.lookupByName("nosuch"))  # type: ignore[attr-defined]
    attempt(lambda: c.lookupByUUIDString("00000000-0000-0000-0000-000000000001"))  # type: ignore[attr-defined]
    attempt(lambda: c.lookupByID(99))  # type: ignore[attr-defined]
    d = c.defineXML(x.format("ovm2", ""))  # type: ignore[attr-defined]
    for op in ("suspend", "resume", "shutdown", "destroy", "reboot"):
        attempt(getattr(d, op))
    t = c.createXML(x.format("ot1", ""), 0)  # type: ignore[attr-defined]
    attempt(lambda: t.setAutostart(1))
    attempt(lambda: t.undefine())
    test = c.lookupByName("test")  # type: ignore[attr-defined]
    attempt(test.create)
    attempt(test.resume)
    test.suspend()
    attempt(test.suspend)
    test.resume()
    attempt(lambda: c.defineXML(x.format("test", "")))  # type: ignore[attr-defined]
    attempt(lambda: c.defineXML(x.format("zz", "<uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>")))  # type: ignore[attr-defined]
    attempt(lambda: c.createXML(x.format("test", "<uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>"), 0))  # type: ignore[attr-defined]
    attempt(lambda: c.domainXMLToNative("qemu-argv", "<domain/>", 0))  # type: ignore[attr-defined]
    attempt(lambda: test.openConsole(None, c.newStream(0), 0))  # type: ignore[attr-defined]
    out += [test.securityLabel(), d.securityLabel(), c.getSecurityModel(), c.getMaxVcpus(None)]  # type: ignore[attr-defined]
    t.destroy()
    d.undefine()
    return out


def test_errors_match_libvirts_own_test_driver(daemon: RunningDaemon) -> None:
    libvirt.registerErrorHandler(lambda *args: None, None)
    real = libvirt.open("test:///default")  # libvirt's test driver, inside this process: the oracle
    ours = libvirt.open(daemon.uri())
    try:
        assert _error_scenario(ours) == _error_scenario(real)
    finally:
        real.close()
        ours.close()
