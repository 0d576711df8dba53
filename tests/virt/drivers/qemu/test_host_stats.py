"""Host statistics parsing (virHostMemGetStatsLinux, virHostCPUGetStatsLinux, cpumaps) on sample text,
and the host readers on a fake sysfs/procfs tree."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from virtstack.virt.drivers.qemu import host_stats as hs
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError

MEMINFO = """MemTotal:       24683656 kB
MemFree:        23751332 kB
MemAvailable:   24010000 kB
Buffers:           38144 kB
Cached:           664700 kB
SwapCached:            0 kB
"""
NODE_MEMINFO = """Node 0 MemTotal:       24683656 kB
Node 0 MemFree:        23751384 kB
Node 0 MemUsed:          932272 kB
Node 0 FilePages:        702844 kB
"""
STAT = """cpu  927366 100 172040 1393397 7915 10 20 0 0 0
cpu0 444193 0 80610 724098 1475 5 5 0 0 0
cpu1 483173 100 91430 669299 6440 5 15 0 0 0
intr 1 2 3
cpu7
"""


def test_parse_meminfo_host_and_node() -> None:
    assert hs.parse_meminfo(MEMINFO, 4) == [
        ("total", 24683656), ("free", 23751332), ("buffers", 38144), ("cached", 664700)
    ]  # fmt: skip
    assert hs.parse_meminfo(NODE_MEMINFO, 2) == [("total", 24683656), ("free", 23751384)]
    assert hs.parse_meminfo(MEMINFO, 2) == [("total", 24683656), ("free", 23751332)]  # stops at the limit
    assert hs.meminfo_value(NODE_MEMINFO, "MemFree:") == 23751384
    assert hs.parse_meminfo("garbage\nMemTotal: lots kB\n", 4) == []


def test_parse_cpu_stat_sums_like_libvirt() -> None:
    # kernel = system + irq + softirq, user = user + nice; USER_HZ 100 -> 10 ms a tick
    assert hs.parse_cpu_stat(STAT, -1, 100) == [
        ("kernel", (172040 + 10 + 20) * 10_000_000),
        ("user", (927366 + 100) * 10_000_000),
        ("idle", 1393397 * 10_000_000),
        ("iowait", 7915 * 10_000_000),
    ]
    cpu1 = hs.parse_cpu_stat(STAT, 1, 100)
    assert cpu1 is not None and cpu1[1] == ("user", 483273 * 10_000_000)
    assert hs.parse_cpu_stat(STAT, 2, 100) is None  # absent
    assert hs.parse_cpu_stat(STAT, 7, 100) is None  # present but without the four numbers
    assert hs.parse_cpu_stat("cpu0 1 2 3 4\n", 0, 100) == [  # old kernels: no irq/softirq columns
        ("kernel", 3 * 10_000_000), ("user", 3 * 10_000_000), ("idle", 4 * 10_000_000), ("iowait", 0)
    ]  # fmt: skip


@pytest.fixture
def fake_host(tmp_path: Path) -> tuple[Path, Path, Path]:
    proc, node, cpu = tmp_path / "proc", tmp_path / "node", tmp_path / "cpu"
    for d in (proc, node / "node0", node / "node2", cpu):
        d.mkdir(parents=True)
    (proc / "meminfo").write_text(MEMINFO)
    (proc / "stat").write_text(STAT)
    (node / "node0" / "meminfo").write_text(NODE_MEMINFO)
    (node / "node2" / "meminfo").write_text(NODE_MEMINFO.replace("Node 0", "Node 2").replace("23751384", "1000"))
    (cpu / "present").write_text("0-11\n")
    (cpu / "online").write_text("0-1,8\n")
    return proc, node, cpu


def test_memory_stats_count_fields_and_errors(fake_host: tuple[Path, Path, Path]) -> None:
    proc, node, _ = fake_host
    assert hs.memory_stats(-1, 0, proc, node) == (4, [])
    assert hs.memory_stats(2, 0, proc, node) == (2, [])
    assert hs.memory_stats(2, 2, proc, node) == (2, [("total", 24683656), ("free", 1000)])
    with pytest.raises(VirtError) as exc:
        hs.memory_stats(3, 0, proc, node)
    assert (exc.value.code, exc.value.message) == (
        ErrorCode.INVALID_ARG, "cellNum in virHostMemGetStats must be less than or equal to 2"
    )  # fmt: skip
    with pytest.raises(VirtError) as exc:
        hs.memory_stats(-1, 3, proc, node)
    assert exc.value.message == "nparams in virHostMemGetStatsLinux must be 4"
    with pytest.raises(VirtError) as exc:
        hs.memory_stats(1, 2, proc, node)  # a hole in the node numbering: its file is missing
    assert exc.value.code == ErrorCode.SYSTEM_ERROR and exc.value.message.startswith("cannot open ")
    with pytest.raises(VirtError) as exc:
        hs.memory_stats(0, 0, proc, node / "absent")
    assert exc.value.message == "Requested operation is not valid: NUMA isn't available on this host"


def test_cells_free_and_free_memory(fake_host: tuple[Path, Path, Path]) -> None:
    _, node, _ = fake_host
    assert hs.cells_free_memory(0, 10, node) == [23751384 * 1024, 0, 1000 * 1024]  # node1 absent: 0
    assert hs.cells_free_memory(2, 1, node) == [1000 * 1024]
    assert hs.free_memory(node) == (23751384 + 1000) * 1024
    with pytest.raises(VirtError) as exc:
        hs.cells_free_memory(3, 1, node)
    assert exc.value.message == "internal error: start cell 3 out of range (0-2)"


def test_cpu_stats_and_cpus(fake_host: tuple[Path, Path, Path]) -> None:
    proc, _, cpu = fake_host
    assert hs.cpu_stats(4096, 0, proc) == (4, [])  # the count query does not check the CPU
    with pytest.raises(VirtError) as exc:
        hs.cpu_stats(4096, 4, proc)
    assert exc.value.message == "Invalid cpuNum in virHostCPUGetStatsLinux"
    assert hs.present_cpu_count(cpu) == 12
    assert hs.online_cpus(cpu) == [0, 1, 8]


def test_driver_entry_points_refuse_flags_and_types() -> None:
    driver = hs.HostStatsMixin()
    with pytest.raises(VirtError) as exc:
        asyncio.run(driver.node_get_cpu_map(1, 1, 1))
    assert (exc.value.code, exc.value.domain, exc.value.message) == (
        ErrorCode.INVALID_ARG, ErrorDomain.NONE, "unsupported flags (0x1) in function virHostCPUGetMap"
    )  # fmt: skip
    with pytest.raises(VirtError) as exc:
        asyncio.run(driver.connect_get_max_vcpus("xen"))
    assert (exc.value.domain, exc.value.message) == (ErrorDomain.QEMU, "invalid argument: unknown type 'xen'")
    assert asyncio.run(driver.connect_get_max_vcpus("QEMU")) == 16
