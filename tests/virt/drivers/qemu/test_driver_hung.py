"""A hung QEMU (SIGSTOP) must not wedge its domain: monitor calls time out, the lock wait times out with
libvirt's error, and destroy kills the process before it takes the lock (qemuProcessBeginStopJob)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from qemu_driver_helpers import EventLog, reaping

from virtstack.testing.guest import Guest, domain_xml
from virtstack.virt.drivers.base import DomainState, LifecycleEvent, ShutoffReason, StoppedDetail
from virtstack.virt.drivers.qemu.driver import QemuDriver
from virtstack.virt.drivers.qemu.process import pid_alive, runtime_of
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(240)]


def test_hung_qemu_times_out_and_destroy_still_kills_it(guest: Guest, tmp_path: Path) -> None:
    async def scenario() -> None:
        drv = QemuDriver(tmp_path / "state")
        drv.job_wait = 0.5
        drv.processes.monitor_timeout = 2.0
        drv.processes.term_grace = 1.0
        ev = EventLog(drv)
        dom = await drv.domain_create_xml(domain_xml("hung", guest))
        obj = drv.domains.get(dom)
        pid = runtime_of(obj).pid
        os.kill(pid, signal.SIGSTOP)

        # a monitor call to the stopped QEMU holds the domain's lock ...
        suspend = asyncio.create_task(drv.domain_suspend(dom))
        await asyncio.sleep(0.2)
        # ... so the next operation gives up on the lock with libvirt's error
        with pytest.raises(VirtError) as err:
            await drv.domain_resume(dom)
        assert (err.value.code, err.value.domain, str(err.value)) == (
            ErrorCode.OPERATION_TIMEOUT, ErrorDomain.QEMU,
            "Timed out during operation: cannot acquire state change lock",
        )  # fmt: skip
        # ... and the monitor call itself ends with a timeout, freeing the lock
        with pytest.raises(VirtError) as err:
            await asyncio.wait_for(suspend, 30)
        assert err.value.code == ErrorCode.OPERATION_TIMEOUT
        assert "'stop'" in str(err.value)
        assert not obj.lock.locked()
        assert obj.state == DomainState.RUNNING  # QEMU never said STOP

        # destroy while a call is stuck on the hung QEMU (now with a long monitor timeout): it kills
        # first (SIGTERM is not delivered to a stopped process; SIGKILL after the grace is), which ends
        # the stuck call and frees the lock, instead of waiting behind it
        runtime_of(obj).monitor.timeout = 120.0  # type: ignore[union-attr]
        stuck = asyncio.create_task(drv.domain_suspend(dom))
        await asyncio.sleep(0.2)
        began = time.monotonic()
        await asyncio.wait_for(drv.domain_destroy(dom), 30)
        assert time.monotonic() - began < 15
        with pytest.raises(VirtError) as err:
            await asyncio.wait_for(stuck, 10)
        assert err.value.code != ErrorCode.OPERATION_TIMEOUT
        assert not pid_alive(pid)
        assert ev.of("hung")[-1] == (LifecycleEvent.STOPPED, StoppedDetail.DESTROYED)
        assert [d.name for d in await drv.connect_list_all_domains()] == []
        assert obj.state == DomainState.SHUTOFF and obj.reason == ShutoffReason.DESTROYED
        await drv.close()

    with reaping(tmp_path / "state"):
        asyncio.run(scenario())
