"""Pieces of `virsh domstats` (virConnectGetAllDomainStats / virDomainListGetStats) as libvirt 9.0's
QEMU driver builds them (qemuDomainGetStats*): group bits, typed parameters, and the readers of /proc,
debugfs, image files and QMP replies the groups are made of.

A record's parameters are (field, (VIR_TYPED_PARAM_* type, value)) pairs: remote_typed_param's
`value` is an XDR union our codec encodes from a (discriminant, arm value) tuple.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from typing import Any

from virtstack.virt.drivers.qemu.process import read_stat
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError

#: virDomainStatsTypes, in the order libvirt's workers run (qemuDomainGetStatsWorkers)
STATS_STATE = 1
STATS_CPU_TOTAL = 2
STATS_BALLOON = 4
STATS_VCPU = 8
STATS_INTERFACE = 16
STATS_BLOCK = 32
STATS_PERF = 64
STATS_IOTHREAD = 128
STATS_MEMORY = 256
STATS_DIRTYRATE = 512
STATS_VM = 1024
#: groups this driver gathers for any domain; dirty rates need QEMU, hence a running domain (libvirt
#: checks the capability of the domain's QEMU, which an inactive domain has none of). perf events,
#: IOThreads, resctrl memory bandwidth and QEMU's query-stats are not gathered.
SUPPORTED_ALWAYS = STATS_STATE | STATS_CPU_TOTAL | STATS_BALLOON | STATS_VCPU | STATS_INTERFACE | STATS_BLOCK
SUPPORTED_RUNNING = SUPPORTED_ALWAYS | STATS_DIRTYRATE
#: the groups that ask QEMU, for which libvirt takes a query job
NEED_MONITOR = STATS_BALLOON | STATS_BLOCK | STATS_DIRTYRATE | STATS_VCPU

#: virConnectGetAllDomainStatsFlags
FILTER_FLAGS = 0xFF  # active/inactive, persistent/transient, running/paused/shutoff/other
STATS_NOWAIT = 1 << 29
STATS_BACKING = 1 << 30
STATS_ENFORCE = 1 << 31
ALLOWED_FLAGS = FILTER_FLAGS | STATS_NOWAIT | STATS_BACKING | STATS_ENFORCE

#: virTypedParameterType
INT, UINT, LLONG, ULLONG, DOUBLE, BOOLEAN, STRING = 1, 2, 3, 4, 5, 6, 7
#: virDomainDirtyRateStatus by QEMU's DirtyRateStatus
DIRTYRATE_STATUS = {"unstarted": 0, "measuring": 1, "measured": 2}

Param = tuple[str, tuple[int, Any]]

#: virDomainMemoryStatTags -> the balloon.* name libvirt stores (ACTUAL_BALLOON=6 is not stored)
MEMORY_STAT_NAMES = {
    0: "swap_in", 1: "swap_out", 2: "major_fault", 3: "minor_fault", 4: "unused", 5: "available",
    7: "rss", 8: "usable", 9: "last-update", 10: "disk_caches", 11: "hugetlb_pgalloc", 12: "hugetlb_pgfail",
}
#: query-blockstats counters -> libvirt's frontend fields (qemuDomainGetStatsBlockExportFrontend)
FRONTEND_STATS = (
    ("rd.reqs", "rd_operations"), ("rd.bytes", "rd_bytes"), ("rd.times", "rd_total_time_ns"),
    ("wr.reqs", "wr_operations"), ("wr.bytes", "wr_bytes"), ("wr.times", "wr_total_time_ns"),
    ("fl.reqs", "flush_operations"), ("fl.times", "flush_total_time_ns"),
)
QCOW_MAGIC = b"QFI\xfb"


def unsupported_groups(bits: int) -> VirtError:
    """qemuDomainGetStatsCheckSupport's refusal under VIR_CONNECT_GET_ALL_DOMAINS_STATS_ENFORCE_STATS."""
    return VirtError(
        ErrorCode.ARGUMENT_UNSUPPORTED,
        f"Stats types bits 0x{bits:x} are not supported by this daemon or QEMU",
        domain=ErrorDomain.QEMU,
    )


def groups_for(stats: int, enforce: bool, active: bool) -> int:
    """The groups to gather for one domain: all supported ones when none are asked for; asked-for
    unsupported ones are dropped, or refused when enforced."""
    supported = SUPPORTED_RUNNING if active else SUPPORTED_ALWAYS
    if stats == 0:
        return supported
    if enforce and stats & ~supported:
        raise unsupported_groups(stats & ~supported)
    return stats & supported


# -- /proc and debugfs ------------------------------------------------------------------------------
def cpu_times(pid: int) -> tuple[int, int, int] | None:
    """(total, user, system) ns from proc(5)'s stat (libvirt's virProcessGetStatInfo); None when the
    process is gone (libvirt ignores that error).

    An inactive domain has no process (pid 0): libvirt 9.0 then reads /proc/self/stat and reports its
    own daemon's time; we report the same three fields as zero, the time the domain has really used.
    """
    if not pid:
        return 0, 0, 0
    try:
        stat = read_stat(pid)
    except OSError:
        return None
    return stat.cpu_time_ns, stat.user_ns, stat.system_ns


def halt_poll_ns(pid: int, debugfs: str = "/sys/kernel/debug/kvm") -> tuple[int, int]:
    """KVM's halt-polling success and failure ns of a QEMU (debugfs kvm/PID-FD/); 0 without KVM."""
    try:
        entry = next((e for e in os.listdir(debugfs) if e.startswith(f"{pid}-")), None)
        if entry is None:
            return 0, 0
        values = []
        for name in ("halt_poll_success_ns", "halt_poll_fail_ns"):
            with open(f"{debugfs}/{entry}/{name}") as f:
                values.append(int(f.read().strip()))
        return values[0], values[1]
    except (OSError, ValueError):
        return 0, 0


def sched_delay_ns(pid: int, tid: int) -> int:
    """Time a thread waited on a run queue: 2nd field of /proc/PID/task/TID/schedstat (qemuGetSchedstatDelay)."""
    try:
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            return int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def sched_wait_ns(pid: int, tid: int) -> int:
    """se.statistics.wait_sum (ms with decimals) of /proc/PID/task/TID/sched (qemuGetSchedInfo); 0
    when the kernel does not collect it."""
    try:
        with open(f"/proc/{pid}/task/{tid}/sched") as f:
            lines = f.read().splitlines()
    except OSError:
        return 0
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() in ("se.statistics.wait_sum", "se.wait_sum"):
            whole, _, frac = value.strip().partition(".")
            try:
                return int(whole) * 1_000_000 + int((frac + "000000")[:6])
            except ValueError:
                return 0
    return 0


# -- groups -----------------------------------------------------------------------------------------
def memory_stat_params(stats: list[tuple[int, int]]) -> list[Param]:
    """balloon.* from virDomainMemoryStats tags, in the stats' order (qemuDomainGetStatsBalloon)."""
    params: list[Param] = []
    for tag, value in stats:
        name = MEMORY_STAT_NAMES.get(tag)
        if name is not None:
            params.append((f"balloon.{name}", (ULLONG, value)))
    return params


def block_index(node_name: str | None) -> int:
    """src->id from a blockdev node name 'libvirt-N-format' (libvirt's backingIndex); 0 if none."""
    parts = (node_name or "").split("-")
    return int(parts[1]) if len(parts) == 3 and parts[0] == "libvirt" and parts[1].isdigit() else 0


def qdev_alias(qdev: str | None) -> str:
    """The device id in a QOM path '/machine/peripheral/ID/...' (or an id as it is)."""
    if qdev and qdev.startswith("/machine/peripheral/"):
        return qdev.split("/")[3]
    return qdev or ""


def image_sizes(path: str, fmt: str) -> tuple[int, int, int] | None:
    """(allocation, capacity, physical) of a local image, as libvirt reads an inactive disk
    (virStorageSourceUpdateBackingSizes + capacity from a qcow2 header); None if it cannot be read."""
    try:
        st = os.stat(path)
        capacity = st.st_size
        if fmt == "qcow2":
            with open(path, "rb") as f:
                header = f.read(32)
            if header[:4] == QCOW_MAGIC and len(header) >= 32:
                capacity = struct.unpack(">Q", header[24:32])[0]
    except OSError:
        return None
    return st.st_blocks * 512, capacity, st.st_size


def dirtyrate_params(info: Mapping[str, Any]) -> list[Param]:
    """dirtyrate.* from QMP query-dirty-rate (qemuDomainGetStatsDirtyRate)."""
    status = DIRTYRATE_STATUS.get(str(info.get("status")), 0)
    params: list[Param] = [
        ("dirtyrate.calc_status", (INT, status)),
        ("dirtyrate.calc_start_time", (LLONG, int(info.get("start-time", 0)))),
        ("dirtyrate.calc_period", (INT, int(info.get("calc-time", 0)))),
        ("dirtyrate.calc_mode", (STRING, str(info.get("mode", "page-sampling")))),
    ]
    if status == DIRTYRATE_STATUS["measured"]:
        params.append(("dirtyrate.megabytes_per_second", (LLONG, int(info.get("dirty-rate", 0)))))
        if info.get("mode") == "dirty-ring":
            for vcpu in info.get("vcpu-dirty-rate") or []:
                params.append((f"dirtyrate.vcpu.{vcpu['id']}.megabytes_per_second", (ULLONG, int(vcpu["dirty-rate"]))))
    return params
