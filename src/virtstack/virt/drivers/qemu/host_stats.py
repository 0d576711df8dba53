"""Host statistics the QEMU driver reports (libvirt's virhost*: nodememstats, nodecpustats, freecell,
nodecpumap, maxvcpus), read from /proc and /sys of the host the daemon runs on.

The checks mirror libvirt's layers, each with its own error domain, because clients see them: the
remote dispatcher (VIR_FROM_RPC), the public API in libvirt-host.c (VIR_FROM_DOMAIN), the host helpers
in virhostmem.c / virhostcpu.c (VIR_FROM_NONE, errors through virReportInvalidArg without the
"invalid argument:" prefix) and qemu_driver.c (VIR_FROM_QEMU). The files read are tiny procfs/sysfs
pseudo-files that never block, so they are read inline on the event loop.
"""

from __future__ import annotations

import os
from pathlib import Path

from virtstack.kvm import abi
from virtstack.kvm.errors import KvmError
from virtstack.kvm.system import KVM_DEVICE, Kvm
from virtstack.virt.drivers.qemu.nodeinfo import cpumap_bytes, parse_cpu_list
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError, check_flags, invalid_arg

PROC = Path("/proc")
SYS_NODE = Path("/sys/devices/system/node")
SYS_CPU = Path("/sys/devices/system/cpu")

#: virNodeMemoryStats / virNodeCPUStats arrays the remote protocol carries at most
REMOTE_NODE_MEMORY_STATS_MAX = 16
REMOTE_NODE_CPU_STATS_MAX = 16
REMOTE_NODE_MAX_CELLS = 1024
#: VIR_NODE_MEMORY_STATS_ALL_CELLS / VIR_NODE_CPU_STATS_ALL_CPUS
ALL = -1
#: libvirt's answer for type None / "qemu" (qemuConnectGetMaxVcpus), and the kernel's documented floor
QEMU_MAX_VCPUS = 16
KVM_DEFAULT_MAX_VCPUS = 4

#: /proc/meminfo header -> virNodeMemoryStats field, in virHostMemGetStatsLinux's table
MEMINFO_FIELDS = {"MemTotal:": "total", "MemFree:": "free", "Buffers:": "buffers", "Cached:": "cached"}
#: how many fields virHostMemGetStatsLinux promises: all four for the host, total/free for a cell
MEM_STATS_ALL = 4
MEM_STATS_CELL = 2
CPU_STATS = 4


# -- errors ------------------------------------------------------------------------------------------
def _rpc_internal(message: str) -> VirtError:
    """The remote dispatcher's own argument checks (daemon/remote.c)."""
    return VirtError(ErrorCode.INTERNAL_ERROR, message, ErrorDomain.RPC)


def _check_nparams(nparams: int, limit: int) -> None:
    if nparams < 0:
        raise _rpc_internal("nparams must be non-negative")
    if nparams > limit:
        raise _rpc_internal("nparams too large")


def _numa_unavailable() -> VirtError:
    return VirtError(ErrorCode.OPERATION_INVALID, "NUMA isn't available on this host")


# -- pure parsing ------------------------------------------------------------------------------------
def parse_meminfo(text: str, limit: int) -> list[tuple[str, int]]:
    """virHostMemGetStatsLinux: the wanted lines in file order, KiB as the kernel prints them.

    Per-node files prefix each line with "Node N "; reading stops once `limit` fields were found.
    """
    found: list[tuple[str, int]] = []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["Node"]:
            words = words[2:]
        if len(words) < 2 or words[0] not in MEMINFO_FIELDS or not words[1].isdigit():
            continue
        found.append((MEMINFO_FIELDS[words[0]], int(words[1])))
        if len(found) >= limit:
            break
    return found


def meminfo_value(text: str, header: str) -> int | None:
    """One "Header: N kB" value (KiB) of /proc/meminfo or a node's meminfo, or None."""
    for name, value in parse_meminfo(text, len(MEMINFO_FIELDS)):
        if name == MEMINFO_FIELDS[header]:
            return value
    return None


def parse_cpu_stat(text: str, cpu: int, tick_hz: int) -> list[tuple[str, int]] | None:
    """virHostCPUGetStatsLinux: kernel/user/idle/iowait in ns from the "cpu" (all) or "cpuN" line.

    kernel = system + irq + softirq, user = user + nice, as libvirt adds them; None: no such line.
    """
    header = "cpu" if cpu == ALL else f"cpu{cpu}"
    nsec_per_tick = 1_000_000_000 // tick_hz
    for line in text.splitlines():
        words = line.split()
        numbers = words[1:8]
        if not words or words[0] != header or len(numbers) < 4 or not all(w.isdigit() for w in numbers):
            continue
        ticks = [int(w) for w in numbers] + [0] * (7 - len(numbers))
        usr, nice, system, idle, iowait, irq, softirq = ticks[:7]
        return [
            ("kernel", (system + irq + softirq) * nsec_per_tick),
            ("user", (usr + nice) * nsec_per_tick),
            ("idle", idle * nsec_per_tick),
            ("iowait", iowait * nsec_per_tick),
        ]
    return None


# -- host readers ------------------------------------------------------------------------------------
def numa_nodes(sys_node: Path = SYS_NODE) -> list[int]:
    """The NUMA nodes sysfs lists (libnuma's configured nodes); empty when the host has no NUMA."""
    return sorted(int(p.name[4:]) for p in sys_node.glob("node[0-9]*"))


def _read_or_raise(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise VirtError(ErrorCode.SYSTEM_ERROR, f"cannot open {path}: {exc.strerror}") from exc


def node_free_bytes(node: int, sys_node: Path = SYS_NODE) -> int:
    """libnuma's numa_node_size64 free part: the node's MemFree in bytes (0 if unreadable)."""
    try:
        text = (sys_node / f"node{node}" / "meminfo").read_text()
    except OSError:
        return 0
    return (meminfo_value(text, "MemFree:") or 0) * 1024


def available_bytes() -> int:
    """gnulib's physmem_available, libvirt's fallback without NUMA: free pages times page size."""
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def memory_stats(cell: int, nparams: int, proc: Path = PROC, sys_node: Path = SYS_NODE) -> tuple[int, list[tuple[str, int]]]:
    """virHostMemGetStats after its flag check: (how many fields the cell has, the fields or [] when
    nparams is 0, the caller's "how many?" question)."""
    if cell == ALL:
        path, wanted = proc / "meminfo", MEM_STATS_ALL
    else:
        nodes = numa_nodes(sys_node)
        if not nodes:
            raise _numa_unavailable()
        if cell > nodes[-1]:
            raise invalid_arg(
                f"cellNum in virHostMemGetStats must be less than or equal to {nodes[-1]}", "virHostMemGetStats"
            )
        path, wanted = sys_node / f"node{cell}" / "meminfo", MEM_STATS_CELL
    text = _read_or_raise(path)
    if nparams == 0:
        return wanted, []
    if nparams != wanted:
        raise invalid_arg(f"nparams in virHostMemGetStatsLinux must be {wanted}", "virHostMemGetStatsLinux")
    found = parse_meminfo(text, wanted)
    if not found:
        raise VirtError(ErrorCode.INTERNAL_ERROR, "no available memory line found")
    return wanted, found


def cpu_stats(cpu: int, nparams: int, proc: Path = PROC) -> tuple[int, list[tuple[str, int]]]:
    """virHostCPUGetStats after its flag check: (4, the CPU's fields or [] when nparams is 0).

    The count query succeeds for any CPU number, as libvirt's does; only fetching checks it.
    """
    text = _read_or_raise(proc / "stat")
    if nparams == 0:
        return CPU_STATS, []
    if nparams != CPU_STATS:
        raise invalid_arg(
            f"nparams in virHostCPUGetStatsLinux must be equal to {CPU_STATS}", "virHostCPUGetStatsLinux"
        )
    found = parse_cpu_stat(text, cpu, os.sysconf("SC_CLK_TCK"))
    if found is None:
        raise invalid_arg("Invalid cpuNum in virHostCPUGetStatsLinux", "virHostCPUGetStatsLinux")
    return CPU_STATS, found


def cells_free_memory(start: int, maxcells: int, sys_node: Path = SYS_NODE) -> list[int]:
    """virHostMemGetCellsFree: free bytes of cells start .. start+maxcells-1 that exist."""
    nodes = numa_nodes(sys_node)
    last_node = nodes[-1] if nodes else 0
    if start > last_node:
        raise VirtError(ErrorCode.INTERNAL_ERROR, f"start cell {start} out of range (0-{last_node})")
    if not nodes:
        return [available_bytes()]
    last = min(start + maxcells - 1, last_node)
    return [node_free_bytes(n, sys_node) for n in range(start, last + 1)]


def free_memory(sys_node: Path = SYS_NODE) -> int:
    """virHostMemGetInfo's free part: the sum of every node's MemFree, or free pages without NUMA."""
    nodes = numa_nodes(sys_node)
    if not nodes:
        return available_bytes()
    return sum(node_free_bytes(n, sys_node) for n in nodes)


def present_cpu_count(sys_cpu: Path = SYS_CPU) -> int:
    """virHostCPUGetCount: highest present CPU + 1 (CPUs that may come online count too)."""
    cpus = parse_cpu_list(_read_or_raise(sys_cpu / "present").strip())
    return max(cpus) + 1 if cpus else 0


def online_cpus(sys_cpu: Path = SYS_CPU) -> list[int]:
    """The online CPU list (virHostCPUGetOnlineBitmap)."""
    return parse_cpu_list(_read_or_raise(sys_cpu / "online").strip())


def kvm_max_vcpus(device: str = KVM_DEVICE) -> int:
    """virHostCPUGetKVMMaxVCPUs: KVM_CAP_MAX_VCPUS, else KVM_CAP_NR_VCPUS, else the documented 4."""
    try:
        with Kvm(device) as kvm:
            for cap in (abi.KVM_CAP_MAX_VCPUS, abi.KVM_CAP_NR_VCPUS):
                value = kvm.check_extension(cap)
                if value > 0:
                    return value
    except KvmError as exc:
        raise VirtError(ErrorCode.SYSTEM_ERROR, f"Unable to open {device}: {os.strerror(exc.errno or 0)}") from exc
    return KVM_DEFAULT_MAX_VCPUS


class HostStatsMixin:
    """The node_* and connect_get_max_vcpus entry points of QemuDriver."""

    async def node_get_memory_stats(self, nparams: int, cell_num: int, flags: int) -> tuple[list[tuple[str, int]], int]:
        """virNodeGetMemoryStats: with nparams 0 only the count comes back (in `nparams`, no params)."""
        _check_nparams(nparams, REMOTE_NODE_MEMORY_STATS_MAX)
        if cell_num < 0 and cell_num != ALL:
            raise invalid_arg(
                "cellNum in virNodeGetMemoryStats only accepts -1 as a negative value",
                "virNodeGetMemoryStats",
                ErrorDomain.DOMAIN,
            )
        check_flags(flags, 0, "virHostMemGetStats")
        count, params = memory_stats(cell_num, nparams)
        return ([], count) if nparams == 0 else (params, 0)

    async def node_get_cpu_stats(self, cpu_num: int, nparams: int, flags: int) -> tuple[list[tuple[str, int]], int]:
        """virNodeGetCPUStats: the count for nparams 0 (whatever the CPU), else the CPU's four times."""
        _check_nparams(nparams, REMOTE_NODE_CPU_STATS_MAX)
        if cpu_num < 0 and cpu_num != ALL:
            raise invalid_arg(
                "cpuNum in virNodeGetCPUStats only accepts -1 as a negative value",
                "virNodeGetCPUStats",
                ErrorDomain.DOMAIN,
            )
        check_flags(flags, 0, "virHostCPUGetStats")
        count, params = cpu_stats(cpu_num, nparams)
        return ([], count) if nparams == 0 else (params, 0)

    async def node_get_free_memory(self) -> int:
        """virNodeGetFreeMemory, in bytes."""
        return free_memory()

    async def node_get_cells_free_memory(self, start_cell: int, maxcells: int) -> list[int]:
        """virNodeGetCellsFreeMemory: free bytes per cell from `start_cell`, at most `maxcells`."""
        if maxcells < 0:
            raise VirtError(ErrorCode.RPC, "maxcells must be non-negative", ErrorDomain.RPC)
        if maxcells > REMOTE_NODE_MAX_CELLS:
            raise VirtError(ErrorCode.RPC, "maxcells > REMOTE_NODE_MAX_CELLS", ErrorDomain.RPC)
        if maxcells == 0:
            raise invalid_arg(
                "maxCells in virNodeGetCellsFreeMemory must be greater than zero",
                "virNodeGetCellsFreeMemory",
                ErrorDomain.DOMAIN,
            )
        if start_cell < 0:
            raise invalid_arg(
                "startCell in virNodeGetCellsFreeMemory must be zero or greater",
                "virNodeGetCellsFreeMemory",
                ErrorDomain.DOMAIN,
            )
        return cells_free_memory(start_cell, maxcells)

    async def node_get_cpu_map(self, need_map: int, need_online: int, flags: int) -> tuple[bytes, int, int]:
        """virNodeGetCPUMap -> (cpumap, online, ret); ret is the map's size in CPUs.

        As libvirt does, the size is the present-CPU count when neither map nor count is wanted, else
        the online bitmap's size (highest online CPU + 1); unrequested parts are sent empty / 0.
        """
        check_flags(flags, 0, "virHostCPUGetMap")
        if not need_map and not need_online:
            return b"", 0, present_cpu_count()
        online = online_cpus()
        size = max(online) + 1 if online else 0
        cpumap = cpumap_bytes(online, (size + 7) // 8) if need_map else b""
        return cpumap, len(online) if need_online else 0, size

    async def connect_get_max_vcpus(self, type_name: str | None) -> int:
        """qemuConnectGetMaxVcpus: 16 for QEMU (TCG), the kernel's limit for KVM; case is ignored."""
        if type_name is None or type_name.lower() == "qemu":
            return QEMU_MAX_VCPUS
        if type_name.lower() == "kvm":
            return kvm_max_vcpus()
        raise VirtError(ErrorCode.INVALID_ARG, f"unknown type '{type_name}'", ErrorDomain.QEMU)
