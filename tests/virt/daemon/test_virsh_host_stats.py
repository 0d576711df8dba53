"""Host statistics (nodememstats, nodecpustats, freecell, nodecpumap, maxvcpus) through virtstackd's
qemu:///system with the real virsh and libvirt-python, compared with the real libvirtd 9.0.

The numbers move between calls, so outputs are compared by layout (digits folded, spaces collapsed);
errors are deterministic on one host and compared exactly, including the server-side argument checks
that libvirt's client library would normally stop first (sent raw through our own RPC client).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from virtstack.testing.servers import PrivateLibvirtd
from virtstack.virt.client import connect_async
from virtstack.virt.errors import VirtError

if TYPE_CHECKING:  # the fixture comes from conftest.py; importing it at run time needs `python -m pytest`
    from tests.virt.daemon.conftest import RunningDaemon

libvirt = pytest.importorskip("libvirt", reason="libvirt-python (python3-libvirt) is not importable")

COMMANDS = [
    "nodememstats",
    "nodememstats --cell 0",
    "nodecpustats",
    "nodecpustats --cpu 0",
    "nodecpustats --percent",
    "freecell",
    "freecell --all",
    "freecell --cellno 0",
    "nodecpumap",
    "nodecpumap --pretty",
    "maxvcpus",
    "maxvcpus --type kvm",
    "maxvcpus --type qemu",
]
FAILING = ["nodememstats --cell 99", "nodecpustats --cpu 4096", "freecell --cellno 99", "maxvcpus --type xen"]

#: raw calls (procedure, args) including arguments libvirt's client library refuses before sending
RAW_CALLS: list[tuple[str, dict[str, Any] | None]] = [
    ("node_get_memory_stats", {"nparams": 0, "cellNum": -1, "flags": 0}),
    ("node_get_memory_stats", {"nparams": 0, "cellNum": 0, "flags": 0}),
    ("node_get_memory_stats", {"nparams": 4, "cellNum": -1, "flags": 0}),
    ("node_get_memory_stats", {"nparams": 2, "cellNum": 0, "flags": 0}),
    ("node_get_memory_stats", {"nparams": 3, "cellNum": -1, "flags": 0}),
    ("node_get_memory_stats", {"nparams": 17, "cellNum": -1, "flags": 0}),
    ("node_get_memory_stats", {"nparams": -1, "cellNum": -1, "flags": 0}),
    ("node_get_memory_stats", {"nparams": 0, "cellNum": -2, "flags": 0}),
    ("node_get_memory_stats", {"nparams": 0, "cellNum": 99, "flags": 0}),
    ("node_get_memory_stats", {"nparams": 0, "cellNum": -1, "flags": 2}),
    ("node_get_cpu_stats", {"cpuNum": -1, "nparams": 0, "flags": 0}),
    ("node_get_cpu_stats", {"cpuNum": 4096, "nparams": 0, "flags": 0}),
    ("node_get_cpu_stats", {"cpuNum": 0, "nparams": 4, "flags": 0}),
    ("node_get_cpu_stats", {"cpuNum": 4096, "nparams": 4, "flags": 0}),
    ("node_get_cpu_stats", {"cpuNum": -1, "nparams": 3, "flags": 0}),
    ("node_get_cpu_stats", {"cpuNum": -1, "nparams": 17, "flags": 0}),
    ("node_get_cpu_stats", {"cpuNum": -2, "nparams": 4, "flags": 0}),
    ("node_get_cpu_stats", {"cpuNum": -1, "nparams": 4, "flags": 4}),
    ("node_get_free_memory", None),
    ("node_get_cells_free_memory", {"startCell": 0, "maxcells": 5}),
    ("node_get_cells_free_memory", {"startCell": -1, "maxcells": 5}),
    ("node_get_cells_free_memory", {"startCell": 0, "maxcells": 0}),
    ("node_get_cells_free_memory", {"startCell": 0, "maxcells": -3}),
    ("node_get_cells_free_memory", {"startCell": 0, "maxcells": 2000}),
    ("node_get_cells_free_memory", {"startCell": 99, "maxcells": 1}),
    ("node_get_cpu_map", {"need_map": 0, "need_online": 0, "flags": 0}),
    ("node_get_cpu_map", {"need_map": 0, "need_online": 1, "flags": 0}),
    ("node_get_cpu_map", {"need_map": 1, "need_online": 0, "flags": 0}),
    ("node_get_cpu_map", {"need_map": 1, "need_online": 1, "flags": 0}),
    ("node_get_cpu_map", {"need_map": 1, "need_online": 1, "flags": 1}),
    ("connect_get_max_vcpus", {"type": None}),
    ("connect_get_max_vcpus", {"type": "QEMU"}),
    ("connect_get_max_vcpus", {"type": "Kvm"}),
    ("connect_get_max_vcpus", {"type": "xen"}),
    ("connect_get_max_vcpus", {"type": ""}),
]


def _layout(text: str) -> str:
    """Digits folded to N and runs of spaces to one: what stays equal between two hosts' samples."""
    return "\n".join(re.sub(r" +", " ", re.sub(r"\d+(\.\d+)?", "N", line)) for line in text.split("\n"))


def _qemu_uri(daemon: RunningDaemon) -> str:
    return daemon.uri("qemu", "/system")


def test_virsh_host_stats_output(daemon: RunningDaemon) -> None:
    """Every command succeeds with libvirt's labels, in KiB and ns, whatever libvirtd is around."""
    r = daemon.virsh("nodememstats", uri=_qemu_uri(daemon))
    assert r.returncode == 0, r.stderr
    assert [line.split(":")[0].strip() for line in r.stdout.splitlines() if line] == [
        "total", "free", "buffers", "cached"
    ]  # fmt: skip
    total_kib = int(r.stdout.split()[2])
    assert total_kib == int(Path("/proc/meminfo").read_text().split()[1])
    r = daemon.virsh("nodecpustats", "--cpu", "0", uri=_qemu_uri(daemon))
    assert r.returncode == 0, r.stderr
    assert [line.split(":")[0] for line in r.stdout.splitlines() if line] == ["user", "system", "idle", "iowait"]
    r = daemon.virsh("nodecpumap", uri=_qemu_uri(daemon))
    online = Path("/sys/devices/system/cpu/online").read_text().strip()
    assert r.returncode == 0 and "CPUs online:" in r.stdout, r.stderr
    r = daemon.virsh("nodecpumap", "--pretty", uri=_qemu_uri(daemon))
    assert r.stdout.splitlines()[2].split()[-1] == online
    # virsh asks domain capabilities first (the default machine's limit), getMaxVcpus only without them
    caps = daemon.virsh("domcapabilities", "--virttype", "qemu", uri=_qemu_uri(daemon)).stdout
    limit = re.search(r"<vcpu max='(\d+)'/>", caps)
    r = daemon.virsh("maxvcpus", "--type", "qemu", uri=_qemu_uri(daemon))
    assert limit is not None and (r.returncode, r.stdout) == (0, f"{limit.group(1)}\n\n"), r.stderr
    conn = libvirt.open(_qemu_uri(daemon))
    try:
        assert conn.getMaxVcpus("qemu") == 16  # qemuConnectGetMaxVcpus' fixed answer for TCG
    finally:
        conn.close()


def test_virsh_layout_matches_libvirtd(daemon: RunningDaemon, libvirtd: PrivateLibvirtd) -> None:
    oracle_uri = libvirtd.uri("qemu:///system")
    for command in COMMANDS:
        ours = daemon.virsh(*command.split(), uri=_qemu_uri(daemon))
        theirs = daemon.virsh(*command.split(), uri=oracle_uri)
        assert theirs.returncode == 0, theirs.stderr
        assert (ours.returncode, _layout(ours.stdout), ours.stderr) == (0, _layout(theirs.stdout), ""), command
    for command in FAILING:
        ours = daemon.virsh(*command.split(), uri=_qemu_uri(daemon))
        theirs = daemon.virsh(*command.split(), uri=oracle_uri)
        assert theirs.returncode == 1
        assert (ours.returncode, ours.stdout, ours.stderr) == (1, theirs.stdout, theirs.stderr), command


def _python_session(uri: str) -> list[object]:
    """libvirt-python's host calls: shapes of the values, errors in full."""
    conn = libvirt.open(uri)
    calls = [
        lambda: sorted(conn.getMemoryStats(-1)),
        lambda: sorted(conn.getMemoryStats(0)),
        lambda: conn.getMemoryStats(99),
        lambda: conn.getMemoryStats(-1, 1),
        lambda: sorted(conn.getCPUStats(-1)),
        lambda: sorted(conn.getCPUStats(0)),
        lambda: conn.getCPUStats(4096),
        lambda: conn.getCPUStats(-1, 1),
        lambda: type(conn.getFreeMemory()).__name__,
        lambda: len(conn.getCellsFreeMemory(0, 64)),
        lambda: conn.getCellsFreeMemory(99, 1),
        lambda: conn.getCPUMap(),
        lambda: conn.getCPUMap(1),
        lambda: conn.getMaxVcpus(None),
        lambda: conn.getMaxVcpus("kvm"),
        lambda: conn.getMaxVcpus("qemu"),
        lambda: conn.getMaxVcpus("xen"),
    ]
    out: list[object] = []
    try:
        for call in calls:
            try:
                out.append(call())
            except libvirt.libvirtError as e:
                out.append((e.get_error_code(), e.get_error_domain(), e.get_error_message()))
    finally:
        conn.close()
    return out


def test_libvirt_python_matches_libvirtd(daemon: RunningDaemon, libvirtd: PrivateLibvirtd) -> None:
    assert _python_session(_qemu_uri(daemon)) == _python_session(libvirtd.uri("qemu:///system"))


#: reply fields whose values move between two samples
COUNTERS = ("value", "freeMem", "cells")


def _fold(value: Any) -> Any:
    """Counters (KiB, ns, bytes) folded to their type: they move between the two samples."""
    if isinstance(value, dict):
        return {k: _count(v) if k in COUNTERS else _fold(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fold(v) for v in value]
    return value


def _count(value: Any) -> Any:
    """A counter's shape: its type, or for a list (cells) the types of its items."""
    return [_count(v) for v in value] if isinstance(value, list) else type(value).__name__


async def _raw_session(uri: str) -> list[object]:
    conn = await connect_async(uri, keepalive=None)
    out: list[object] = []
    try:
        for proc, args in RAW_CALLS:
            try:
                out.append(_fold(await conn.call(proc, args)))
            except VirtError as e:
                out.append((e.code, e.domain, e.message, e.template))
    finally:
        await conn.close()
    return out


def test_raw_calls_match_libvirtd(daemon: RunningDaemon, libvirtd: PrivateLibvirtd) -> None:
    """Wire replies, including nparams/cell checks of the remote dispatcher and libvirt-host.c."""
    ours = asyncio.run(_raw_session(_qemu_uri(daemon)))
    theirs = asyncio.run(_raw_session(libvirtd.uri("qemu:///system")))
    mismatches = [(call, t, o) for call, t, o in zip(RAW_CALLS, theirs, ours, strict=True) if t != o]
    assert mismatches == []
