"""Driver state without booting guests: files on disk, node info, the driver table, define/undefine."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest

from virtstack.testing.guest import Guest, domain_xml
from virtstack.virt.drivers import open_driver
from virtstack.virt.drivers.base import (
    DefinedDetail,
    DomainEvent,
    DomainRef,
    DomainState,
    LifecycleEvent,
    ListFlags,
    UndefinedDetail,
    XmlFlags,
)
from virtstack.virt.drivers.qemu.driver import QemuDriver
from virtstack.virt.drivers.qemu.nodeinfo import read_node_info
from virtstack.virt.drivers.qemu.state import DriverState, StateLayout, StatusRecord
from virtstack.virt.drivers.test import TestDriver as _TestDriver
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError


def test_status_config_autostart_round_trip(tmp_path: Path) -> None:
    state = DriverState(StateLayout.for_root(tmp_path))
    state.save_config("a", "<domain type='qemu'><name>a</name></domain>")
    assert state.load_configs() == {"a": "<domain type='qemu'><name>a</name></domain>"}
    state.set_autostart("a", True)
    assert state.autostart("a")
    assert os.readlink(state.autostart_path("a")) == str(state.config_path("a"))
    record = StatusRecord(
        name="a", domain_id=7, pid=1234, state=DomainState.PAUSED, reason=1,
        monitor_path="/x/monitor.sock", live_xml='<domain type="qemu" id="7">\n  <name>a</name>\n</domain>',
        persistent=False, extra={"pty-charserial0": "/dev/pts/9"},
    )  # fmt: skip
    state.save_status(record)
    text = state.status_path("a").read_text()
    assert text.startswith("<domstatus state='paused' reason='1' pid='1234'>".replace("'", '"'))
    assert state.load_statuses() == [record]
    state.delete_config("a")
    assert state.load_configs() == {} and not state.autostart("a")
    state.delete_status("a")
    assert state.load_statuses() == []
    # no temp files left behind by the atomic writes
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]


def test_broken_files_are_logged_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A bad config must not abort loading the others; a broken status file must not vanish silently."""
    state = DriverState(StateLayout.for_root(tmp_path))
    state.save_config("good", "<domain type='qemu'><name>good</name></domain>")
    state.save_config("bad", "x")
    state.config_path("bad").write_bytes(b"<domain>\xff\xfe</domain>")
    state.status_path("lost").parent.mkdir(parents=True, exist_ok=True)
    state.status_path("lost").write_text("<domstatus pid='4242'>")
    with caplog.at_level("WARNING", logger="virtstack.virt.drivers.qemu.state"):
        assert state.load_configs() == {"good": "<domain type='qemu'><name>good</name></domain>"}
        assert state.load_statuses() == []
    fields = [getattr(r, "fields", {}) for r in caplog.records]
    assert {"path": str(state.config_path("bad"))}.items() <= fields[0].items()
    assert {"path": str(state.status_path("lost"))}.items() <= fields[1].items()
    assert [r.levelname for r in caplog.records] == ["WARNING", "WARNING"]


def test_names_that_escape_the_directory_are_refused(tmp_path: Path) -> None:
    state = DriverState(StateLayout.for_root(tmp_path))
    with pytest.raises(VirtError) as err:
        state.save_config("../evil", "<domain/>")
    assert err.value.code == ErrorCode.XML_ERROR


def test_node_info_multiplies_out() -> None:
    info = read_node_info()
    assert info.cpus == len(os.sched_getaffinity(0)) or info.cpus == os.cpu_count()
    assert info.nodes * info.sockets * info.cores * info.threads == info.cpus
    assert info.memory_kib > 0 and info.model == os.uname().machine
    assert info.mhz >= 0


def test_driver_table(tmp_path: Path) -> None:
    qemu = open_driver("qemu:///system", tmp_path)
    assert isinstance(qemu, QemuDriver) and qemu.uri == "qemu:///system"
    assert qemu.layout.config_dir == tmp_path / "etc" / "qemu"
    assert isinstance(open_driver("test:///default"), _TestDriver)
    for uri, code, message in [
        ("xen:///system", ErrorCode.NO_CONNECT, "no connection driver available for xen:///system"),
        ("qemu+ssh://host/system", ErrorCode.NO_CONNECT, "no connection driver available for qemu+ssh://host/system"),
        ("qemu:///bogus", ErrorCode.INTERNAL_ERROR, "internal error: unexpected QEMU URI path '/bogus', try qemu:///system"),
    ]:
        with pytest.raises(VirtError) as err:
            open_driver(uri, tmp_path)
        assert (err.value.code, str(err.value)) == (code, message)


def test_define_undefine_xml_autostart(guest: Guest, tmp_path: Path) -> None:
    async def scenario() -> None:
        drv = QemuDriver(tmp_path)
        events: list[DomainEvent] = []
        drv.add_event_listener(events.append)
        uid = uuid.UUID("d6a8a0b2-7c0e-4a57-9c38-0a4f1b2c3d4e")
        dom = await drv.domain_define_xml(domain_xml("vm1", guest, uuid=str(uid)))
        assert dom == DomainRef("vm1", uid, -1)
        assert events[-1] == DomainEvent(dom, LifecycleEvent.DEFINED, DefinedDetail.ADDED)
        assert (tmp_path / "etc" / "qemu" / "vm1.xml").exists()
        assert await drv.domain_get_state(dom) == (DomainState.SHUTOFF, 0)
        assert await drv.domain_is_persistent(dom) and not await drv.domain_is_active(dom)
        xml = await drv.domain_get_xml_desc(dom, XmlFlags.INACTIVE)
        assert "<name>vm1</name>" in xml and str(uid) in xml and " id=" not in xml.splitlines()[0]
        info = await drv.domain_get_info(dom)
        assert (info.state, info.max_mem_kib, info.nr_virt_cpu, info.cpu_time_ns) == (DomainState.SHUTOFF, 131072, 1, 0)
        assert await drv.domain_get_os_type(dom) == "hvm"
        assert await drv.domain_get_max_memory(dom) == 131072
        # redefine: same uuid updates, same name with another uuid is refused as libvirt refuses it
        again = await drv.domain_define_xml(domain_xml("vm1", guest, uuid=str(uid), memory_mib=64))
        assert again == dom and events[-1].detail == DefinedDetail.UPDATED
        assert (await drv.domain_get_info(dom)).max_mem_kib == 65536
        with pytest.raises(VirtError) as err:
            await drv.domain_define_xml(domain_xml("vm1", guest, uuid=str(uuid.UUID(int=5))))
        assert (err.value.code, err.value.domain, str(err.value)) == (
            ErrorCode.OPERATION_FAILED, ErrorDomain.DOMAIN,  # libvirt raises it in generic domain code
            f"operation failed: domain 'vm1' already exists with uuid {uid}",
        )  # fmt: skip
        # wrong-state operations use libvirt's words
        for call in (drv.domain_shutdown, drv.domain_destroy, drv.domain_suspend, drv.domain_resume):
            with pytest.raises(VirtError) as err:
                await call(dom)
            assert (err.value.code, str(err.value)) == (
                ErrorCode.OPERATION_INVALID, "Requested operation is not valid: domain is not running",
            )  # fmt: skip
        with pytest.raises(VirtError) as err:
            await drv.domain_shutdown(dom, 4)
        assert (err.value.code, str(err.value)) == (
            ErrorCode.INVALID_ARG, "unsupported flags (0x4) in function qemuDomainShutdownFlags",
        )  # fmt: skip
        with pytest.raises(VirtError) as err:
            await drv.domain_destroy(dom, 0x10)
        assert str(err.value) == "unsupported flags (0x10) in function qemuDomainDestroyFlags"
        await drv.domain_set_autostart(dom, True)
        assert await drv.domain_get_autostart(dom)
        assert [d.name for d in await drv.connect_list_all_domains(ListFlags.AUTOSTART)] == ["vm1"]
        await drv.domain_set_autostart(dom, False)
        assert await drv.connect_list_all_domains(ListFlags.ACTIVE) == []
        # one driver owns a state directory at a time (QEMU serves one monitor client)
        with pytest.raises(VirtError) as err:
            await QemuDriver(tmp_path).domain_lookup_by_uuid(uid)
        assert err.value.code == ErrorCode.SYSTEM_ERROR and "another driver instance" in str(err.value)
        await drv.close()
        with pytest.raises(VirtError) as err:
            await drv.domain_lookup_by_uuid(uid)
        assert err.value.code == ErrorCode.INVALID_CONN
        # the next driver on the directory sees the same persistent domain
        drv = QemuDriver(tmp_path)
        drv.add_event_listener(events.append)
        assert await drv.domain_lookup_by_uuid(uid) == dom
        assert (await drv.domain_get_info(dom)).max_mem_kib == 65536
        await drv.domain_undefine(dom)
        assert events[-1] == DomainEvent(dom, LifecycleEvent.UNDEFINED, UndefinedDetail.REMOVED)
        assert not (tmp_path / "etc" / "qemu" / "vm1.xml").exists()
        with pytest.raises(VirtError) as err:
            await drv.domain_lookup_by_name("vm1")
        assert str(err.value) == "Domain not found: no domain with matching name 'vm1'"
        with pytest.raises(VirtError) as err:
            await drv.domain_get_state(dom)
        assert str(err.value) == f"Domain not found: no domain with matching uuid '{uid}' (vm1)"
        with pytest.raises(VirtError) as err:
            await drv.domain_define_xml("<domain type='qemu'><name>x</name>")
        assert err.value.code == ErrorCode.XML_DETAIL
        assert (await drv.connect_get_version()) >= 7_000_000
        native = await drv.connect_domain_xml_to_native("qemu-argv", domain_xml("vm2", guest))
        assert "qemu-system-x86_64 -name guest=vm2," in native and " -S " in native
        with pytest.raises(VirtError) as err:
            await drv.connect_domain_xml_to_native("xen-xm", domain_xml("vm2", guest))
        assert str(err.value) == "invalid argument: unsupported config type xen-xm"
        caps = await drv.connect_get_capabilities()
        assert caps.startswith("<capabilities>") and "<domain type='qemu'" in caps.replace('"', "'")
        node = await drv.node_get_info()
        assert node.cpus == os.cpu_count() and node.memory_kib > 0
        await drv.close()

    asyncio.run(scenario())


def test_kvm_domains_warn_when_kvm_is_slow(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from virtstack.kvm.accel import probe_cached

    result = probe_cached()
    drv = QemuDriver(tmp_path)
    with caplog.at_level("WARNING", logger="virtstack.virt.drivers.qemu.driver"):
        asyncio.run(drv._warn_if_kvm_slow("vm"))
    warned = [r for r in caplog.records if "KVM here is slow" in r.getMessage()]
    assert len(warned) == (0 if result.fast else 1)
