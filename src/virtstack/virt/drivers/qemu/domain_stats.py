"""Runtime statistics of running domains (vcpuinfo, vcpucount, dommemstat, domcontrol, domjobinfo),
read from QMP and from /proc of the QEMU process, as libvirt's QEMU driver reports them.

vCPU threads come from QMP `query-cpus-fast` (asked once per QEMU process, as libvirt refreshes them
only when vCPUs change); per-thread CPU time, last host CPU and RSS from /proc/PID[/task/TID]/stat
(libvirt's virProcessGetStatInfo); affinity from sched_getaffinity. Pinning queries read the definition
(libvirt's virDomainDefGetVcpuPinInfoHelper: an unpinned vCPU may run on every host CPU).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from virtstack.virt.domain_obj import not_running
from virtstack.virt.drivers.base import DomainRef as _DomainRef
from virtstack.virt.drivers.qemu import definition as defs
from virtstack.virt.drivers.qemu import domain_stats_all as dsa
from virtstack.virt.drivers.qemu.host_stats import present_cpu_count
from virtstack.virt.drivers.qemu.nodeinfo import cpumap_bytes
from virtstack.virt.drivers.qemu.process import read_stat, refresh_vcpu_threads, runtime_of
from virtstack.virt.errors import (
    ErrorCode,
    ErrorDomain,
    VirtError,
    check_flags,
    error_factory,
    exclusive_flags,
    invalid_arg,
)

if TYPE_CHECKING:
    from virtstack.virt.domain_obj import DomainList, DomainObj
    from virtstack.virt.drivers.base import DomainRef

Error = error_factory(ErrorDomain.QEMU)

#: virDomainModificationImpact / virDomainVcpuFlags
AFFECT_LIVE = 1
AFFECT_CONFIG = 2
VCPU_MAXIMUM = 4
VCPU_GUEST = 8
#: virDomainGetJobStatsFlags
JOB_STATS_COMPLETED = 1
JOB_STATS_KEEP_COMPLETED = 2
#: virVcpuState
VCPU_RUNNING = 1
#: virDomainControlState and virDomainControlErrorReason
CONTROL_OK = 0
CONTROL_OCCUPIED = 2
CONTROL_ERROR = 3
CONTROL_ERROR_REASON_MONITOR = 2
#: virDomainMemoryStatTags
MEMORY_STAT_ACTUAL_BALLOON = 6
MEMORY_STAT_RSS = 7
MEMORY_STAT_LAST_UPDATE = 9
#: QEMU's balloon guest-stats names -> (tag, divisor), in libvirt's order (qemuMonitorJSONGetMemoryStats)
BALLOON_STATS: tuple[tuple[str, int, int], ...] = (
    ("stat-swap-in", 0, 1024),
    ("stat-swap-out", 1, 1024),
    ("stat-major-faults", 2, 1),
    ("stat-minor-faults", 3, 1),
    ("stat-free-memory", 4, 1024),
    ("stat-total-memory", 5, 1024),
    ("stat-available-memory", 8, 1024),
    ("last-update", MEMORY_STAT_LAST_UPDATE, 1),
    ("stat-disk-caches", 10, 1024),
    ("stat-htlb-pgalloc", 11, 1),
    ("stat-htlb-pgfail", 12, 1),
)
#: remote_protocol.x limits the daemon checks before calling the driver
REMOTE_VCPUINFO_MAX = 16384
REMOTE_CPUMAPS_MAX = 8388608
REMOTE_DOMAIN_MEMORY_STATS_MAX = 1024
#: remote_domain_get_job_info_ret: type and eleven counters, all zero when no job runs
JOB_INFO_FIELDS = 12
#: a stat value QEMU reports for a counter the guest does not collect
NOT_COLLECTED = 2**64 - 1


# -- errors as libvirt words them -------------------------------------------------------------------
def check_exclusive_live_config(flags: int) -> None:
    """VIR_EXCLUSIVE_FLAGS_GOTO of the public API (libvirt-domain.c), which libvirtd runs too."""
    if flags & AFFECT_LIVE and flags & AFFECT_CONFIG:
        raise exclusive_flags("VIR_DOMAIN_AFFECT_LIVE", "VIR_DOMAIN_AFFECT_CONFIG", ErrorDomain.DOMAIN)


def _internal(message: str) -> VirtError:
    return VirtError(ErrorCode.INTERNAL_ERROR, message, domain=ErrorDomain.RPC)


def balloon_stats(actual_bytes: int | None, guest_stats: Mapping[str, Any] | None) -> list[tuple[int, int]]:
    """(tag, value) pairs from `query-balloon` and the balloon's `guest-stats` property, in libvirt's
    order; counters the guest does not collect (-1) are left out."""
    stats: list[tuple[int, int]] = []
    if actual_bytes is not None:
        stats.append((MEMORY_STAT_ACTUAL_BALLOON, actual_bytes // 1024))
    if guest_stats is None:
        return stats
    inner = guest_stats.get("stats") or {}
    for name, tag, divisor in BALLOON_STATS:
        source = guest_stats if name == "last-update" else inner
        value = source.get(name)
        if isinstance(value, int) and value >= 0 and value != NOT_COLLECTED:
            stats.append((tag, value // divisor))
    return stats


def vcpu_bytes_limit(count: int, maplen: int, what: str) -> None:
    """The daemon's own limits (remote.c) on how much a reply may carry."""
    if count > REMOTE_VCPUINFO_MAX:
        raise _internal(f"{what} > REMOTE_VCPUINFO_MAX")
    if count * maplen > REMOTE_CPUMAPS_MAX:
        raise _internal(f"{what} * maplen > REMOTE_CPUMAPS_MAX")


class DomainStatsMixin:
    """The per-domain statistics entry points of QemuDriver."""

    if TYPE_CHECKING:

        async def _obj(self, dom: DomainRef) -> DomainObj[Any]: ...

        async def _ready(self) -> None: ...

        domains: DomainList[Any]
        job_wait: float

    # -- vCPUs ------------------------------------------------------------------------------------
    async def _vcpu_threads(self, obj: DomainObj[Any]) -> dict[int, int]:
        """cpu-index -> thread id of a running domain (found at start, or now after a reconnect)."""
        rt = runtime_of(obj)
        if rt.monitor is None:
            raise not_running()
        threads = await refresh_vcpu_threads(rt)
        if not threads:
            raise Error(ErrorCode.OPERATION_INVALID, "cpu affinity is not supported")
        return threads

    async def domain_get_vcpus(
        self, dom: DomainRef, maxinfo: int, maplen: int
    ) -> tuple[list[tuple[int, int, int, int]], bytes]:
        """virDomainGetVcpus: per online vCPU its state, CPU time, last host CPU and affinity."""
        vcpu_bytes_limit(maxinfo, maplen, "maxinfo")
        if maxinfo < 1:
            raise invalid_arg("maxinfo in virDomainGetVcpus must be greater than zero", domain=ErrorDomain.DOMAIN)
        obj = await self._obj(dom)
        if not obj.is_active():
            raise Error(ErrorCode.OPERATION_INVALID, "cannot retrieve vcpu information for inactive domain")
        threads = await self._vcpu_threads(obj)
        pid = obj.runtime["qemu"].pid
        infos: list[tuple[int, int, int, int]] = []
        maps = bytearray(maxinfo * maplen)
        for index in range(defs.vcpus(obj.current)):
            if len(infos) >= maxinfo:
                break
            tid = threads.get(index)
            if not tid:
                continue  # offline vCPU
            try:
                stat = read_stat(pid, tid)
                affinity = os.sched_getaffinity(tid)
            except OSError as e:
                raise Error(ErrorCode.SYSTEM_ERROR, f"cannot get vCPU placement & pCPU time: {e.strerror}") from e
            at = len(infos) * maplen
            maps[at : at + maplen] = cpumap_bytes(affinity, maplen)
            infos.append((index, VCPU_RUNNING, stat.cpu_time_ns, stat.last_cpu))
        return infos, bytes(maps)

    async def domain_get_vcpus_flags(self, dom: DomainRef, flags: int) -> int:
        """virDomainGetVcpusFlags: current or maximum count of the live or persistent definition."""
        check_exclusive_live_config(flags)
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG | VCPU_MAXIMUM | VCPU_GUEST, "qemuDomainGetVcpusFlags", ErrorDomain.QEMU)
        obj = await self._obj(dom)
        defn = self._one_def(obj, flags)
        if flags & VCPU_GUEST:
            if not obj.is_active():
                raise Error(
                    ErrorCode.INVALID_ARG, "vCPU count provided by the guest agent can only be requested for live domains"
                )
            raise Error(ErrorCode.ARGUMENT_UNSUPPORTED, "QEMU guest agent is not configured")
        return defs.vcpus(defn) if flags & VCPU_MAXIMUM else defs.vcpus_current(defn)

    async def domain_get_max_vcpus(self, dom: DomainRef) -> int:
        """qemuDomainGetMaxVcpus: the live maximum, so an inactive domain has none."""
        return await self.domain_get_vcpus_flags(dom, AFFECT_LIVE | VCPU_MAXIMUM)

    @staticmethod
    def _one_def(obj: DomainObj[Any], flags: int) -> Any:
        """virDomainObjGetOneDef: "current" is live while running, else config; LIVE needs a running
        domain and CONFIG a persistent one."""
        live = bool(flags & AFFECT_LIVE) or (not flags & AFFECT_CONFIG and obj.is_active())
        if live and not obj.is_active():
            raise not_running()
        if not live and not obj.persistent:
            raise VirtError(
                ErrorCode.OPERATION_INVALID,
                "transient domains do not have any persistent config",
                domain=ErrorDomain.DOMAIN,
            )
        return obj.current if live else obj.definition

    async def domain_get_vcpu_pin_info(self, dom: DomainRef, ncpumaps: int, maplen: int, flags: int) -> tuple[bytes, int]:
        """virDomainGetVcpuPinInfo: the definition's pinning, one map per vCPU (at most `ncpumaps`)."""
        vcpu_bytes_limit(ncpumaps, maplen, "ncpumaps")
        check_exclusive_live_config(flags)
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG, "qemuDomainGetVcpuPinInfo", ErrorDomain.QEMU)
        obj = await self._obj(dom)
        pins = defs.vcpu_pins(self._one_def(obj, flags), present_cpu_count())[: max(ncpumaps, 0)]
        maps = b"".join(cpumap_bytes(cpus, maplen) for cpus in pins)
        return maps.ljust(max(ncpumaps, 0) * maplen, b"\0"), len(pins)

    async def domain_get_emulator_pin_info(self, dom: DomainRef, maplen: int, flags: int) -> tuple[bytes, int]:
        """virDomainGetEmulatorPinInfo: where QEMU's own threads may run, by definition."""
        if maplen > REMOTE_CPUMAPS_MAX:
            raise _internal("maplen > REMOTE_CPUMAPS_MAX")
        check_exclusive_live_config(flags)
        check_flags(flags, AFFECT_LIVE | AFFECT_CONFIG, "qemuDomainGetEmulatorPinInfo", ErrorDomain.QEMU)
        obj = await self._obj(dom)
        return cpumap_bytes(defs.emulator_pin(self._one_def(obj, flags), present_cpu_count()), maplen), 1

    # -- memory -----------------------------------------------------------------------------------
    async def domain_memory_stats(self, dom: DomainRef, max_stats: int, flags: int) -> list[tuple[int, int]]:
        """virDomainMemoryStats: balloon figures when there is a balloon, then QEMU's RSS (KiB)."""
        if max_stats > REMOTE_DOMAIN_MEMORY_STATS_MAX:
            raise _internal("maxStats > REMOTE_DOMAIN_MEMORY_STATS_MAX")
        check_flags(flags, 0, "qemuDomainMemoryStats", ErrorDomain.QEMU)
        obj = await self._obj(dom)
        if not obj.is_active():
            raise not_running()
        stats = await self._balloon_stats(obj) if defs.balloon(obj.current) is not None else []
        if len(stats) < max_stats:
            try:
                stats.append((MEMORY_STAT_RSS, read_stat(obj.runtime["qemu"].pid).rss_kib))
            except OSError:
                raise Error(ErrorCode.OPERATION_FAILED, "cannot get RSS for domain") from None
        return stats[:max_stats]

    async def _balloon_stats(self, obj: DomainObj[Any]) -> list[tuple[int, int]]:
        """query-balloon for `actual`, then the balloon device's guest-stats QOM property."""
        monitor = runtime_of(obj).monitor
        if monitor is None:
            raise not_running()
        actual = (await monitor.execute("query-balloon")).get("actual")
        alias = getattr(getattr(defs.balloon(obj.current), "alias", None), "name", None) or "balloon0"
        try:
            guest = await monitor.execute("qom-get", {"path": f"/machine/peripheral/{alias}", "property": "guest-stats"})
        except VirtError:
            guest = None  # no such property on this balloon: only `actual` is known
        return balloon_stats(actual, guest)

    # -- jobs -------------------------------------------------------------------------------------
    async def domain_get_control_info(self, dom: DomainRef, flags: int) -> tuple[int, int, int]:
        """virDomainGetControlInfo: ok, or occupied while another operation holds the domain, or an
        error once the monitor is gone. How long a job has run is not recorded, so its time is 0."""
        check_flags(flags, 0, "qemuDomainGetControlInfo", ErrorDomain.QEMU)
        obj = await self._obj(dom)
        if not obj.is_active():
            raise not_running()
        if runtime_of(obj).monitor is None:
            return CONTROL_ERROR, CONTROL_ERROR_REASON_MONITOR, 0
        if obj.lock.locked():
            return CONTROL_OCCUPIED, 0, 0
        return CONTROL_OK, 0, 0

    async def domain_get_job_info(self, dom: DomainRef) -> tuple[int, ...]:
        """virDomainGetJobInfo: this driver runs no background jobs (migration, dump, save), so NONE."""
        obj = await self._obj(dom)
        if not obj.is_active():
            raise not_running()
        return (0,) * JOB_INFO_FIELDS

    async def domain_get_job_stats(self, dom: DomainRef, flags: int) -> tuple[int, list[Any]]:
        """virDomainGetJobStats: no job runs or has completed, so type NONE without parameters; only the
        current job needs a running domain."""
        if flags & JOB_STATS_KEEP_COMPLETED and not flags & JOB_STATS_COMPLETED:
            raise invalid_arg(
                "Flag 'VIR_DOMAIN_JOB_STATS_COMPLETED' is required by flag 'VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED'",
                domain=ErrorDomain.DOMAIN,
            )
        check_flags(flags, JOB_STATS_COMPLETED | JOB_STATS_KEEP_COMPLETED, "qemuDomainGetJobStats", ErrorDomain.QEMU)
        obj = await self._obj(dom)
        if not flags & JOB_STATS_COMPLETED and not obj.is_active():
            raise not_running()
        return 0, []

    # -- domstats (virConnectGetAllDomainStats, virDomainListGetStats) ---------------------------
    async def connect_get_all_domain_stats(
        self, doms: list[Any], stats: int, flags: int
    ) -> list[tuple[DomainRef, list[dsa.Param]]]:
        """One record per chosen domain: every domain (by name), or the given ones that still exist,
        passing the state filters; per domain the asked groups it supports (qemuConnectGetAllDomainStats)."""
        check_flags(flags, dsa.ALLOWED_FLAGS, "qemuConnectGetAllDomainStats", ErrorDomain.QEMU)
        await self._ready()
        filters = flags & dsa.FILTER_FLAGS
        if doms:
            found = (self.domains.find_by_uuid(_wire_uuid(d)) for d in doms)
            objs = [o for o in found if o is not None and o.matches(filters)]
        else:
            objs = sorted(self.domains.list(filters), key=lambda o: o.name)
        records = []
        for obj in objs:
            groups = dsa.groups_for(stats, bool(flags & dsa.STATS_ENFORCE), obj.is_active())
            records.append((obj.ref(), await self._stats_with_job(obj, groups, flags)))
        return records

    async def _stats_with_job(self, obj: DomainObj[Any], groups: int, flags: int) -> list[dsa.Param]:
        """Groups that ask QEMU run under the domain's job; when it cannot be had (busy under NOWAIT, or
        not within the job wait) libvirt still reports what needs no monitor."""
        if not groups & dsa.NEED_MONITOR or (flags & dsa.STATS_NOWAIT and obj.lock.locked()):
            return await self._domain_stats(obj, groups, have_job=False)
        try:
            await asyncio.wait_for(obj.lock.acquire(), self.job_wait)
        except TimeoutError:
            return await self._domain_stats(obj, groups, have_job=False)
        try:
            return await self._domain_stats(obj, groups, have_job=True)
        finally:
            obj.lock.release()

    async def _domain_stats(self, obj: DomainObj[Any], groups: int, have_job: bool) -> list[dsa.Param]:
        """The groups in libvirt's worker order."""
        active = obj.is_active() and runtime_of(obj).monitor is not None
        job = have_job and active
        params: list[dsa.Param] = []
        if groups & dsa.STATS_STATE:
            params += [("state.state", (dsa.INT, int(obj.state))), ("state.reason", (dsa.INT, obj.reason))]
        if groups & dsa.STATS_CPU_TOTAL:
            params += self._cpu_total_params(obj, active)
        if groups & dsa.STATS_BALLOON:
            params += await self._balloon_params(obj, job)
        if groups & dsa.STATS_VCPU:
            params += await self._vcpu_params(obj, active)
        if groups & dsa.STATS_INTERFACE and active:
            # per-NIC counters exist only for NICs with a host interface (ifname); this driver runs
            # user-mode NICs, which have none, so libvirt gives just the count
            params.append(("net.count", (dsa.UINT, defs.net_count(obj.current))))
        if groups & dsa.STATS_BLOCK:
            params += await self._block_params(obj, job)
        monitor = runtime_of(obj).monitor if job else None
        if groups & dsa.STATS_DIRTYRATE and monitor is not None:
            params += dsa.dirtyrate_params(await monitor.execute("query-dirty-rate"))
        return params

    @staticmethod
    def _cpu_total_params(obj: DomainObj[Any], active: bool) -> list[dsa.Param]:
        pid = runtime_of(obj).pid if active else 0
        params: list[dsa.Param] = []
        times = dsa.cpu_times(pid)
        if times is not None:
            params += [(f"cpu.{n}", (dsa.ULLONG, v)) for n, v in zip(("time", "user", "system"), times, strict=True)]
        if active:
            success, fail = dsa.halt_poll_ns(pid)
            params += [
                ("cpu.cache.monitor.count", (dsa.UINT, 0)),  # no resctrl cache monitors are set up
                ("cpu.haltpoll.success.time", (dsa.ULLONG, success)),
                ("cpu.haltpoll.fail.time", (dsa.ULLONG, fail)),
            ]
        return params

    async def _balloon_params(self, obj: DomainObj[Any], job: bool) -> list[dsa.Param]:
        defn = obj.current
        maximum, current = defs.memory_kib(defn)
        has_balloon = defs.balloon(defn) is not None
        shown = current if obj.is_active() and has_balloon else maximum
        params: list[dsa.Param] = [("balloon.current", (dsa.ULLONG, shown)), ("balloon.maximum", (dsa.ULLONG, maximum))]
        if not job:
            return params
        stats = await self._balloon_stats(obj) if has_balloon else []
        try:
            stats.append((MEMORY_STAT_RSS, read_stat(runtime_of(obj).pid).rss_kib))
        except OSError:
            pass
        return params + dsa.memory_stat_params(stats)

    async def _vcpu_params(self, obj: DomainObj[Any], active: bool) -> list[dsa.Param]:
        defn = obj.current
        current = defs.vcpus_current(defn)
        params: list[dsa.Param] = [
            ("vcpu.current", (dsa.UINT, current)), ("vcpu.maximum", (dsa.UINT, defs.vcpus(defn)))
        ]
        if not active:
            return params
        pid = runtime_of(obj).pid
        try:
            threads = await self._vcpu_threads(obj)
            online = [(i, threads[i]) for i in sorted(threads)][:current]
            times = [read_stat(pid, tid).cpu_time_ns for _, tid in online]
        except (VirtError, OSError):
            return params  # libvirt drops the per-vCPU part when it cannot read it
        for (index, tid), cpu_time in zip(online, times, strict=True):
            params += [
                (f"vcpu.{index}.state", (dsa.INT, VCPU_RUNNING)),
                (f"vcpu.{index}.time", (dsa.ULLONG, cpu_time)),
                (f"vcpu.{index}.wait", (dsa.ULLONG, dsa.sched_wait_ns(pid, tid))),
                (f"vcpu.{index}.delay", (dsa.ULLONG, dsa.sched_delay_ns(pid, tid))),
            ]
        return params

    async def _block_params(self, obj: DomainObj[Any], job: bool) -> list[dsa.Param]:
        """block.count, then per disk its name, path and backing index, the frontend's I/O counters
        (query-blockstats) and the image's sizes (query-block; the image file for inactive domains)."""
        disks = defs.disk_facts(obj.current)
        devices: dict[str, Mapping[str, Any]] = {}
        counters: dict[str, Mapping[str, Any]] = {}
        if job:
            monitor = runtime_of(obj).monitor
            assert monitor is not None
            devices = {dsa.qdev_alias(d.get("qdev")): d for d in await monitor.execute("query-block")}
            counters = {dsa.qdev_alias(b.get("qdev")): b.get("stats", {}) for b in await monitor.execute("query-blockstats")}
        params: list[dsa.Param] = [("block.count", (dsa.UINT, len(disks)))]
        for n, disk in enumerate(disks):
            params.append((f"block.{n}.name", (dsa.STRING, disk.target)))
            if disk.path:
                params.append((f"block.{n}.path", (dsa.STRING, disk.path)))
            inserted = (devices.get(disk.alias or "") or {}).get("inserted") or {}
            index = dsa.block_index(inserted.get("node-name")) if obj.is_active() else 0
            if index:
                params.append((f"block.{n}.backingIndex", (dsa.UINT, index)))
            params += _block_sizes(n, disk, inserted, counters.get(disk.alias or ""), obj.is_active())
        return params


def _wire_uuid(dom: Any) -> uuid.UUID:
    """A domain of the request's list: a DomainRef, or remote_nonnull_domain as decoded."""
    if isinstance(dom, _DomainRef):
        return dom.uuid
    return uuid.UUID(bytes=bytes(dom["uuid"]))


def _block_sizes(
    n: int, disk: defs.DiskFacts, inserted: Mapping[str, Any], stats: Mapping[str, Any] | None, active: bool
) -> list[dsa.Param]:
    """Frontend counters when QEMU reported them, then allocation/capacity/physical: a running disk's
    from QEMU (qemuDomainGetStatsOneBlock), an inactive one's from its image (the fallback)."""
    params: list[dsa.Param] = []
    if stats is not None:
        params += [(f"block.{n}.{name}", (dsa.ULLONG, int(stats.get(key, 0)))) for name, key in dsa.FRONTEND_STATS]
    if not active:
        sizes = dsa.image_sizes(disk.path, disk.format) if disk.path else None
        if sizes is not None:
            for name, value in zip(("allocation", "capacity", "physical"), sizes, strict=True):
                if value:
                    params.append((f"block.{n}.{name}", (dsa.ULLONG, value)))
        return params
    if stats is None or not inserted:
        return params
    image = inserted.get("image") or {}
    capacity = int(image.get("virtual-size", 0))
    params.append((f"block.{n}.allocation", (dsa.ULLONG, int(stats.get("wr_highest_offset", 0)))))
    if capacity:
        params.append((f"block.{n}.capacity", (dsa.ULLONG, capacity)))
    physical = int(image.get("actual-size", 0)) or capacity
    if physical:
        params.append((f"block.{n}.physical", (dsa.ULLONG, physical)))
    return params
