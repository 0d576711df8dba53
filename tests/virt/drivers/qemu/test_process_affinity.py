"""vCPU threads and CPU pinning of a QEMU run (libvirt's qemuDomainRefreshVcpuInfo / qemuProcessSetupVcpus)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from virtstack.virt.drivers.qemu.process import QemuRuntime, set_cpu_affinity, vcpu_threads


def test_vcpu_threads_maps_cpu_index_to_thread() -> None:
    reply: list[dict[str, Any]] = [{"cpu-index": 1, "thread-id": 11, "qom-path": "/x"}, {"cpu-index": 0, "thread-id": 10}]
    assert vcpu_threads(reply, pid=5) == {0: 10, 1: 11}


@pytest.mark.parametrize(
    "reply",
    [
        [{"cpu-index": 0, "thread-id": 5}],  # single-threaded TCG: the emulator's own pid
        [{"cpu-index": 0, "thread-id": 7}, {"cpu-index": 1, "thread-id": 7}],  # one thread for two vCPUs
        [{"cpu-index": 0}],  # no thread ids at all
    ],
)
def test_vcpu_threads_discards_ids_that_cannot_be_pinned(reply: list[dict[str, int]]) -> None:
    assert vcpu_threads(reply, pid=5) == {}


def _allowed(pid: int, tid: int) -> set[int]:
    return os.sched_getaffinity(tid) if Path(f"/proc/{pid}/task/{tid}").exists() else set()


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="pinning needs two host CPUs")
def test_set_cpu_affinity_pins_vcpu_threads_and_the_rest_to_the_emulator_cpus(tmp_path: Path) -> None:
    """A real multi-threaded process stands in for QEMU: its first worker is "vCPU 0"."""
    code = "import threading,time\nfor _ in range(2): threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\ntime.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        tids: list[int] = []
        for _ in range(200):
            tids = sorted(int(t) for t in os.listdir(f"/proc/{proc.pid}/task"))
            if len(tids) >= 3:
                break
            subprocess.run(["sleep", "0.01"], check=True)
        vcpu_tid = next(t for t in tids if t != proc.pid)
        rt = QemuRuntime(pid=proc.pid, monitor_path="", lib_dir=tmp_path, run_dir=tmp_path, log_path=tmp_path / "log")
        rt.vcpu_threads = {0: vcpu_tid}
        set_cpu_affinity(rt, [{1}], {0})
        assert _allowed(proc.pid, vcpu_tid) == {1}
        assert all(_allowed(proc.pid, t) == {0} for t in tids if t != vcpu_tid)
        with pytest.raises(Exception, match="cannot set CPU affinity on process"):
            set_cpu_affinity(rt, [{4096}], {0})
    finally:
        proc.kill()
        proc.wait()
