"""virNodeGetInfo for this host, read from /proc and /sys as libvirt's virHostCPUGetInfo does."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from virtstack.virt.drivers.base import NodeInfo

SYS_CPU = Path("/sys/devices/system/cpu")
SYS_NODE = Path("/sys/devices/system/node")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def parse_cpu_list(text: str) -> list[int]:
    """"0-3,8" -> [0, 1, 2, 3, 8] (the kernel's cpulist format)."""
    cpus: list[int] = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def cpumap_bytes(cpus: Iterable[int], maplen: int) -> bytes:
    """virBitmapToDataBuf: bit N of byte N//8 set for CPU N, `maplen` bytes, CPUs past the map dropped."""
    buf = bytearray(maplen)
    for cpu in cpus:
        if 0 <= cpu < maplen * 8:
            buf[cpu // 8] |= 1 << (cpu % 8)
    return bytes(buf)


def _mhz(cpuinfo: str) -> int:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "cpu MHz":
            return int(float(value))
    return 0


def _memory_kib(meminfo: str) -> int:
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def read_node_info(sys_cpu: Path = SYS_CPU, sys_node: Path = SYS_NODE, proc: Path = Path("/proc")) -> NodeInfo:
    """The host's CPU topology and memory; falls back to libvirt's flat topology when it is odd.

    libvirt insists nodes * sockets * cores * threads == cpus; when the host's topology does not
    multiply out it reports 1 node, 1 socket, `cpus` cores, 1 thread, and so do we.
    """
    online = parse_cpu_list(_read(sys_cpu / "online") or "") or list(range(os.cpu_count() or 1))
    cpus = len(online)
    packages: set[str] = set()
    cores: set[tuple[str, str]] = set()
    for cpu in online:
        topo = sys_cpu / f"cpu{cpu}" / "topology"
        pkg = _read(topo / "physical_package_id") or "0"
        packages.add(pkg)
        cores.add((pkg, _read(topo / "core_id") or str(cpu)))
    nodes = len(list(sys_node.glob("node[0-9]*"))) or 1
    sockets_total = max(len(packages), 1)
    sockets = max(sockets_total // nodes, 1)
    cores_per_socket = max(len(cores) // sockets_total, 1)
    threads = max(cpus // max(len(cores), 1), 1)
    if nodes * sockets * cores_per_socket * threads != cpus:
        nodes, sockets, cores_per_socket, threads = 1, 1, cpus, 1
    return NodeInfo(
        model=os.uname().machine,
        memory_kib=_memory_kib(_read(proc / "meminfo") or ""),
        cpus=cpus,
        mhz=_mhz(_read(proc / "cpuinfo") or ""),
        nodes=nodes,
        sockets=sockets,
        cores=cores_per_socket,
        threads=threads,
    )
