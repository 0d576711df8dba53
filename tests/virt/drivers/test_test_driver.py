"""The test:///default driver on its own: libvirt's default objects, lifecycle rules, events, XML errors."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path
from shutil import which

import pytest

from virtstack.virt.drivers.base import (
    DomainEvent,
    DomainState,
    HypervisorDriver,
    LifecycleEvent,
    ListFlags,
    PausedReason,
    ShutoffReason,
    StartFlags,
    XmlFlags,
)
from virtstack.virt.drivers.test import DEFAULT_DOMAIN_XML, TestDriver, _capabilities_xml
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError

XML = "<domain type='test'><name>{n}</name><memory unit='GiB'>1</memory><os><type>hvm</type></os></domain>"


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_is_a_hypervisor_driver() -> None:
    assert isinstance(TestDriver(), HypervisorDriver)


def test_default_domain() -> None:
    async def go() -> None:
        d = TestDriver()
        ref = await d.domain_lookup_by_name("test")
        assert ref.uuid == uuid.UUID("6695eb01-f6a4-8304-79aa-97f2502e193f") and ref.id == 1
        info = await d.domain_get_info(ref)
        assert (info.state, info.max_mem_kib, info.memory_kib, info.nr_virt_cpu) == (
            DomainState.RUNNING,
            8388608,
            2097152,
            2,
        )
        assert await d.domain_get_state(ref) == (1, 0)
        assert await d.domain_get_xml_desc(ref, XmlFlags.INACTIVE) == DEFAULT_DOMAIN_XML
        assert (await d.domain_get_xml_desc(ref)).startswith("<domain type='test' id='1'>\n")

    run(go())


@pytest.mark.skipif(which("virsh") is None, reason="virsh is not installed")
def test_capabilities_match_libvirt_test_driver() -> None:
    # libvirt's own test:///default runs inside the virsh process: the oracle for our copy
    real = subprocess.run(
        ["virsh", "-c", "test:///default", "capabilities"], capture_output=True, text=True, timeout=30
    )
    assert real.returncode == 0
    assert _capabilities_xml() == real.stdout.rstrip("\n") + "\n"


def test_lifecycle_and_events() -> None:
    async def go() -> None:
        d = TestDriver()
        events: list[DomainEvent] = []
        d.add_event_listener(events.append)
        ref = await d.domain_define_xml(XML.format(n="a"))
        assert ref.id == -1
        ref = await d.domain_create(ref)
        assert ref.id == 2
        await d.domain_suspend(ref)
        assert await d.domain_get_state(ref) == (DomainState.PAUSED, PausedReason.USER)
        with pytest.raises(VirtError) as exc:
            await d.domain_suspend(ref)
        assert exc.value.code == ErrorCode.INTERNAL_ERROR
        await d.domain_resume(ref)
        await d.domain_shutdown(ref)
        assert await d.domain_get_state(ref) == (DomainState.SHUTOFF, ShutoffReason.SHUTDOWN)
        with pytest.raises(VirtError) as exc:
            await d.domain_destroy(ref)
        assert (exc.value.code, exc.value.domain, exc.value.message) == (
            ErrorCode.OPERATION_INVALID, ErrorDomain.DOMAIN, "Requested operation is not valid: domain is not running"
        )  # fmt: skip
        await d.domain_set_autostart(ref, True)
        assert await d.domain_get_autostart(ref)
        assert [r.name for r in await d.connect_list_all_domains(ListFlags.AUTOSTART)] == ["a"]
        await d.domain_undefine(ref)
        with pytest.raises(VirtError) as exc:
            await d.domain_lookup_by_name("a")
        assert exc.value.code == ErrorCode.NO_DOMAIN
        kinds = [e.event for e in events]
        assert kinds == [
            LifecycleEvent.DEFINED, LifecycleEvent.STARTED, LifecycleEvent.SUSPENDED, LifecycleEvent.RESUMED,
            LifecycleEvent.STOPPED, LifecycleEvent.UNDEFINED,
        ]  # fmt: skip

    run(go())


def test_transient_domain_vanishes_when_stopped() -> None:
    async def go() -> None:
        d = TestDriver()
        ref = await d.domain_create_xml(XML.format(n="t"), StartFlags.PAUSED)
        assert await d.domain_get_state(ref) == (DomainState.PAUSED, PausedReason.USER)
        assert not await d.domain_is_persistent(ref)
        await d.domain_set_autostart(ref, True)  # test_driver.c allows it
        await d.domain_destroy(ref)
        assert [r.name for r in await d.connect_list_all_domains()] == ["test"]

    run(go())


def test_undefine_running_domain_makes_it_transient() -> None:
    async def go() -> None:
        d = TestDriver()
        ref = await d.domain_lookup_by_name("test")
        await d.domain_undefine(ref)
        assert await d.domain_is_active(ref) and not await d.domain_is_persistent(ref)
        await d.domain_destroy(ref)
        assert await d.connect_list_all_domains() == []

    run(go())


@pytest.mark.parametrize(
    ("xml", "code", "message"),
    [
        ("<domain type='test'><name>x</name>", ErrorCode.XML_DETAIL, "(domain_definition):1:"),
        ("<domain type='nosuchtype'><name>x</name></domain>", ErrorCode.CONFIG_UNSUPPORTED,
         "unsupported configuration: invalid domain type nosuchtype"),
        ("<domain type='test'><memory>1</memory><os><type>hvm</type></os></domain>", ErrorCode.NO_NAME,
         "missing name information"),
        ("<domain type='test'><name>x</name><uuid>zz</uuid><memory>1</memory><os><type>hvm</type></os></domain>",
         ErrorCode.INTERNAL_ERROR, "internal error: malformed uuid element"),
    ],
)  # fmt: skip
def test_bad_xml(xml: str, code: int, message: str) -> None:
    with pytest.raises(VirtError) as exc:
        run(TestDriver().domain_define_xml(xml))
    assert exc.value.code == code
    assert exc.value.message.startswith(message)


def test_name_and_uuid_clashes() -> None:
    async def go() -> None:
        d = TestDriver()
        with pytest.raises(VirtError, match="already exists with uuid"):
            await d.domain_define_xml(XML.format(n="test"))
        ref = await d.domain_define_xml(XML.format(n="b"))
        clash = XML.format(n="c").replace("<memory", f"<uuid>{ref.uuid}</uuid><memory")
        with pytest.raises(VirtError, match="is already defined with uuid"):
            await d.domain_define_xml(clash)

    run(go())


ORACLE_XML = (
    "<domain type='test'><name>vm3</name><uuid>11111111-2222-3333-4444-555555555556</uuid>"
    "<memory unit='MiB'>512</memory><vcpu>1</vcpu><os><type>hvm</type></os><devices>"
    "<disk type='file' device='disk'><source file='/x.img'/><target dev='vda' bus='virtio'/></disk>"
    "<interface type='network'><mac address='52:54:00:00:00:01'/><source network='default'/></interface>"
    "</devices></domain>"
)


@pytest.mark.skipif(which("virsh") is None, reason="virsh is not installed")
def test_define_and_dumpxml_match_libvirt_test_driver(tmp_path: Path) -> None:
    xml = tmp_path / "vm3.xml"
    xml.write_text(ORACLE_XML)
    real = subprocess.run(
        ["virsh", "-c", "test:///default", f"define {xml}; dumpxml vm3; start vm3; dumpxml vm3"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert real.returncode == 0, real.stderr

    async def go() -> str:
        d = TestDriver()
        ref = await d.domain_define_xml(ORACLE_XML)
        inactive = await d.domain_get_xml_desc(ref)
        ref = await d.domain_create(ref)
        active = await d.domain_get_xml_desc(ref)
        return f"Domain 'vm3' defined from {xml}\n\n{inactive}\nDomain 'vm3' started\n\n{active}\n"

    assert run(go()) == real.stdout
