"""Lifecycle on real QEMU (TCG) with the fixture guest: the guest's own console output is the witness."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from qemu_driver_helpers import EventLog, reaping, until, wait_log

from virtstack.testing.guest import Guest, domain_xml
from virtstack.virt.drivers.base import (
    DefinedDetail,
    DomainState,
    LifecycleEvent,
    ListFlags,
    PausedReason,
    ResumedDetail,
    RunningReason,
    ShutdownDetail,
    ShutoffReason,
    StartedDetail,
    StartFlags,
    StoppedDetail,
    SuspendedDetail,
    UndefinedDetail,
    XmlFlags,
)
from virtstack.virt.drivers.qemu.driver import QemuDriver
from virtstack.virt.errors import ErrorCode, VirtError

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(240)]

POWEROFF = "VIRTSTACK-GUEST-POWEROFF"


def test_persistent_domain_lifecycle(guest: Guest, tmp_path: Path) -> None:
    """define, start, suspend/resume, reboot, shutdown, start again, destroy, undefine: one domain."""
    log = tmp_path / "serial.log"

    async def scenario() -> None:
        drv = QemuDriver(tmp_path / "state")
        ev = EventLog(drv)
        dom = await drv.domain_define_xml(domain_xml("life", guest, serial_log=log))
        dom = await drv.domain_create(dom)
        assert dom.id == 1
        assert await drv.domain_get_state(dom) == (DomainState.RUNNING, RunningReason.BOOTED)
        await wait_log(log, guest.marker)
        with pytest.raises(VirtError) as err:
            await drv.domain_create(dom)
        assert (err.value.code, str(err.value)) == (
            ErrorCode.OPERATION_INVALID, "Requested operation is not valid: domain is already running",
        )  # fmt: skip
        assert await drv.domain_lookup_by_id(1) == dom
        assert [d.name for d in await drv.connect_list_all_domains(ListFlags.ACTIVE)] == ["life"]
        live = await drv.domain_get_xml_desc(dom)
        assert "id='1'" in live.splitlines()[0] or 'id="1"' in live.splitlines()[0]
        inactive = await drv.domain_get_xml_desc(dom, XmlFlags.INACTIVE)
        assert "id=" not in inactive.splitlines()[0]
        # the console pty QEMU allocated shows in the live XML only, as libvirt shows it
        assert "<source path='/dev/pts/" in live.replace('"', "'") and "/dev/pts/" not in inactive
        info = await drv.domain_get_info(dom)
        assert info.state == DomainState.RUNNING and info.cpu_time_ns > 0
        assert (info.max_mem_kib, info.memory_kib, info.nr_virt_cpu) == (131072, 131072, 1)
        status = (tmp_path / "state" / "run" / "qemu" / "life.xml").read_text()
        assert "state=\"running\"" in status and "reason=\"1\"" in status

        with pytest.raises(VirtError) as err:
            await drv.domain_shutdown(dom, 2)  # guest agent only: we have none
        assert str(err.value) == "argument unsupported: QEMU guest agent is not configured"
        await drv.domain_suspend(dom)
        assert await drv.domain_get_state(dom) == (DomainState.PAUSED, PausedReason.USER)
        with pytest.raises(VirtError) as err:
            await drv.domain_shutdown(dom)  # libvirt presses the button only on a running guest
        assert str(err.value) == "Requested operation is not valid: domain is not running"
        await drv.domain_resume(dom)
        assert await drv.domain_get_state(dom) == (DomainState.RUNNING, RunningReason.UNPAUSED)
        with pytest.raises(VirtError) as err:
            await drv.domain_resume(dom)
        assert str(err.value) == "Requested operation is not valid: domain is already running"

        # reboot: the guest powers off on the ACPI button, the driver resets it instead of stopping
        await drv.domain_reboot(dom)
        text = await wait_log(log, guest.marker, count=2)
        assert POWEROFF in text
        assert await drv.domain_get_state(dom) == (DomainState.RUNNING, RunningReason.BOOTED)
        assert (await drv.domain_lookup_by_name("life")).id == 1

        await drv.domain_shutdown(dom)
        await ev.wait_for("life", LifecycleEvent.STOPPED, StoppedDetail.SHUTDOWN)
        assert (await wait_log(log, POWEROFF, count=2)).count(guest.marker) == 2
        assert await drv.domain_get_state(dom) == (DomainState.SHUTOFF, ShutoffReason.SHUTDOWN)
        assert not await drv.domain_is_active(dom)
        assert not (tmp_path / "state" / "run" / "qemu" / "life.xml").exists()

        # a second start gets a new id, and starts paused when asked
        again = await drv.domain_create(dom, StartFlags.PAUSED)
        assert again.id == 2
        assert await drv.domain_get_state(dom) == (DomainState.PAUSED, PausedReason.USER)
        await drv.domain_resume(dom)
        await drv.domain_destroy(dom)
        assert await drv.domain_get_state(dom) == (DomainState.SHUTOFF, ShutoffReason.DESTROYED)
        await drv.domain_undefine(dom)

        # libvirt's order and details, checked against the real libvirtd in test_driver_vs_libvirtd.py
        assert ev.of("life") == [
            (LifecycleEvent.DEFINED, DefinedDetail.ADDED),
            (LifecycleEvent.RESUMED, ResumedDetail.UNPAUSED),  # QEMU's first RESUME, before STARTED
            (LifecycleEvent.STARTED, StartedDetail.BOOTED),
            (LifecycleEvent.SUSPENDED, SuspendedDetail.PAUSED),
            (LifecycleEvent.RESUMED, ResumedDetail.UNPAUSED),
            # the reboot sends none: libvirt keeps the domain "running" through its fake reboot
            (LifecycleEvent.SHUTDOWN, ShutdownDetail.GUEST),
            (LifecycleEvent.STOPPED, StoppedDetail.SHUTDOWN),
            (LifecycleEvent.STARTED, StartedDetail.BOOTED),  # started paused: no RESUME
            (LifecycleEvent.SUSPENDED, SuspendedDetail.PAUSED),
            (LifecycleEvent.RESUMED, ResumedDetail.UNPAUSED),
            (LifecycleEvent.SHUTDOWN, ShutdownDetail.HOST),  # QEMU's SHUTDOWN on our SIGTERM
            (LifecycleEvent.STOPPED, StoppedDetail.DESTROYED),
            (LifecycleEvent.UNDEFINED, UndefinedDetail.REMOVED),
        ]
        stopped = [e for e in ev.events if e.event == LifecycleEvent.STOPPED]
        assert [e.domain.id for e in stopped] == [1, 2]  # events carry the id the domain ran with
        await drv.close()

    with reaping(tmp_path / "state"):
        asyncio.run(scenario())


def test_transient_create_undefine_running_and_crash(guest: Guest, tmp_path: Path) -> None:
    """createXML is transient; undefine of a running persistent domain leaves it transient; a QEMU
    that dies without a SHUTDOWN is reported crashed."""

    async def scenario() -> None:
        drv = QemuDriver(tmp_path / "state")
        ev = EventLog(drv)
        tlog, plog = tmp_path / "t.log", tmp_path / "p.log"
        t = await drv.domain_create_xml(domain_xml("trans", guest, serial_log=tlog))
        assert t.id > 0 and not await drv.domain_is_persistent(t)
        assert ev.of("trans") == [
            (LifecycleEvent.RESUMED, ResumedDetail.UNPAUSED),
            (LifecycleEvent.STARTED, StartedDetail.BOOTED),
        ]
        with pytest.raises(VirtError) as err:
            await drv.domain_undefine(t)
        assert str(err.value) == "Requested operation is not valid: cannot undefine transient domain"
        with pytest.raises(VirtError) as err:
            await drv.domain_create_xml(domain_xml("trans", guest))
        assert err.value.code in (ErrorCode.OPERATION_FAILED, ErrorCode.OPERATION_INVALID)

        p = await drv.domain_define_xml(domain_xml("pers", guest, serial_log=plog))
        p = await drv.domain_create(p)
        await wait_log(plog, guest.marker)
        await drv.domain_undefine(p)
        assert await drv.domain_is_active(p) and not await drv.domain_is_persistent(p)
        assert not (tmp_path / "state" / "etc" / "qemu" / "pers.xml").exists()
        await drv.domain_destroy(p)
        with pytest.raises(VirtError) as err:
            await drv.domain_lookup_by_name("pers")
        assert err.value.code == ErrorCode.NO_DOMAIN

        # kill the transient guest's QEMU behind the driver's back: crashed, and gone (transient)
        await wait_log(tlog, guest.marker)
        pid = drv.domains.get(t).runtime["qemu"].pid
        os.kill(pid, 9)
        await ev.wait_for("trans", LifecycleEvent.STOPPED, StoppedDetail.FAILED)
        with pytest.raises(VirtError) as err:
            await drv.domain_lookup_by_uuid(t.uuid)
        assert err.value.code == ErrorCode.NO_DOMAIN
        assert await drv.connect_list_all_domains() == []

        # autostart: once per host boot (the marker lives in the run directory, tmpfs on a real host)
        auto = await drv.domain_define_xml(domain_xml("auto", guest))
        await drv.domain_set_autostart(auto, True)
        await drv.close()
        same_boot = QemuDriver(tmp_path / "state")
        assert not await same_boot.domain_is_active(auto)  # the marker says: autostarted already
        await same_boot.close()
        (tmp_path / "state" / "run" / "qemu" / "autostarted").unlink()  # as after a host reboot
        rebooted = QemuDriver(tmp_path / "state")
        assert await rebooted.domain_get_state(auto) == (DomainState.RUNNING, RunningReason.BOOTED)
        await rebooted.domain_destroy(auto)
        await rebooted.close()

    with reaping(tmp_path / "state"):
        asyncio.run(scenario())


def test_restarted_driver_reconnects_and_marks_dead_guests_crashed(guest: Guest, tmp_path: Path) -> None:
    """Three guests running, driver dropped, one QEMU killed: the new driver has two running (same ids,
    one still transient) and one shut off (crashed); the survivors stay fully usable, console included."""
    state = tmp_path / "state"
    logs = {n: tmp_path / f"{n}.log" for n in "abc"}

    async def first() -> tuple[dict[str, int], int]:
        drv = QemuDriver(state)
        a = await drv.domain_create(await drv.domain_define_xml(domain_xml("a", guest, serial_log=logs["a"])))
        b = await drv.domain_create(await drv.domain_define_xml(domain_xml("b", guest, serial_log=logs["b"])))
        c = await drv.domain_create_xml(domain_xml("c", guest, serial_log=logs["c"]))
        for path in logs.values():
            await wait_log(path, guest.marker)
        pid_a = drv.domains.get(a).runtime["qemu"].pid
        await drv.close()
        return {"a": a.id, "b": b.id, "c": c.id}, pid_a

    async def second(ids: dict[str, int]) -> None:
        drv = QemuDriver(state)
        ev = EventLog(drv)
        a, b, c = [await drv.domain_lookup_by_name(n) for n in "abc"]
        assert (a.id, await drv.domain_get_state(a)) == (-1, (DomainState.SHUTOFF, ShutoffReason.CRASHED))
        assert (b.id, await drv.domain_get_state(b)) == (ids["b"], (DomainState.RUNNING, RunningReason.BOOTED))
        assert (c.id, await drv.domain_get_state(c)) == (ids["c"], (DomainState.RUNNING, RunningReason.BOOTED))
        assert await drv.domain_is_persistent(b) and not await drv.domain_is_persistent(c)
        assert [d.name for d in await drv.connect_list_all_domains(ListFlags.ACTIVE)] == ["b", "c"]
        assert ev.events == []  # libvirt's reconnect sends no event for the domain it finds dead
        # the monitor works again: pause and resume go through QEMU
        await drv.domain_suspend(c)
        await drv.domain_resume(c)
        with pytest.raises(VirtError) as err:
            await drv.domain_open_console(b, "serial7")
        assert str(err.value) == "internal error: cannot find character device serial7"
        stale = await drv.domain_open_console(b, None)
        with pytest.raises(VirtError) as err:  # one session per console, as libvirt
            await drv.domain_open_console(b, "serial0")
        assert str(err.value) == "operation failed: Active console session exists for this domain"
        console = await drv.domain_open_console(b, "serial0", 1)  # FORCE takes it over
        while await asyncio.wait_for(stale.read(), 5):  # the old session ends
            pass
        try:
            await console.write(b"\necho reconnected-$((20+3))\n")
            seen = b""
            while b"reconnected-23" not in seen:
                seen += await asyncio.wait_for(console.read(), 30)
        finally:
            await console.close()
        # the crashed domain starts again, with an id above every id in use before
        a = await drv.domain_create(a)
        assert a.id > max(ids.values())
        for dom in (a, b, c):
            await drv.domain_destroy(dom)
        assert ev.of("c")[-1] == (LifecycleEvent.STOPPED, StoppedDetail.DESTROYED)
        assert [d.name for d in await drv.connect_list_all_domains()] == ["a", "b"]
        await drv.close()

    with reaping(state):
        ids, pid_a = asyncio.run(first())
        os.kill(pid_a, 9)
        asyncio.run(until_dead(pid_a))
        asyncio.run(second(ids))


async def until_dead(pid: int) -> None:
    from virtstack.virt.drivers.qemu.process import pid_alive

    await until(lambda: not pid_alive(pid), 10, f"pid {pid} to die")


def test_failed_start_reports_qemus_error(guest: Guest, tmp_path: Path) -> None:
    """QEMU refusing to start is a libvirt-style error quoting QEMU, and leaves nothing behind."""
    bad = Guest(kernel=tmp_path / "no-such-kernel", initrd=guest.initrd, cmdline=guest.cmdline)

    async def scenario() -> None:
        drv = QemuDriver(tmp_path / "state")
        ev = EventLog(drv)
        dom = await drv.domain_define_xml(domain_xml("bad", bad))
        with pytest.raises(VirtError) as err:
            await drv.domain_create(dom)
        assert err.value.code == ErrorCode.INTERNAL_ERROR
        assert str(err.value).startswith("internal error: qemu unexpectedly closed the monitor: ")
        assert "no-such-kernel" in str(err.value)
        assert await drv.domain_get_state(dom) == (DomainState.SHUTOFF, ShutoffReason.FAILED)
        assert ev.of("bad") == [(LifecycleEvent.DEFINED, DefinedDetail.ADDED)]
        assert list((tmp_path / "state" / "run" / "qemu").glob("*.xml")) == []
        with pytest.raises(VirtError):
            await drv.domain_create_xml(domain_xml("bad2", bad))
        assert [d.name for d in await drv.connect_list_all_domains()] == ["bad"]
        await drv.close()

    with reaping(tmp_path / "state"):
        asyncio.run(scenario())


def test_on_reboot_destroy_turns_a_guest_reboot_into_a_shutdown(guest: Guest, tmp_path: Path) -> None:
    """on_reboot=destroy: the guest rebooting itself stops the domain, because QEMU's reboot action is
    set to shutdown at start (libvirt's set-action)."""
    log = tmp_path / "serial.log"
    xml = domain_xml("destroys", guest, serial_log=log, run="sleep 1; reboot -f").replace(
        "<on_reboot>restart</on_reboot>", "<on_reboot>destroy</on_reboot>"
    )

    async def scenario() -> None:
        drv = QemuDriver(tmp_path / "state")
        ev = EventLog(drv)
        await drv.domain_create_xml(xml)
        await ev.wait_for("destroys", LifecycleEvent.STOPPED, StoppedDetail.SHUTDOWN)
        assert ev.of("destroys") == [
            (LifecycleEvent.RESUMED, ResumedDetail.UNPAUSED),
            (LifecycleEvent.STARTED, StartedDetail.BOOTED),
            (LifecycleEvent.SHUTDOWN, ShutdownDetail.GUEST),
            (LifecycleEvent.STOPPED, StoppedDetail.SHUTDOWN),
        ]
        assert log.read_text().count(guest.marker) == 1  # it never came back
        assert await drv.connect_list_all_domains() == []  # transient: gone
        await drv.close()

    with reaping(tmp_path / "state"):
        asyncio.run(scenario())
