"""Per-domain queries answered from the definition, or from what this driver does not run (cgroups, a
guest agent, snapshots, managed save), with libvirt's answers for those situations.

libvirt 9.0's QEMU driver reads tuning from cgroups while a domain runs; this driver never places QEMU
in cgroups, so live tuning queries fail as libvirtd does without the controllers, and configuration
queries answer from the persistent definition. No guest-agent channel is ever connected, and no
snapshot, checkpoint or managed-save image is ever made, so those lists are empty.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from virtstack.virt.domain_obj import check_active
from virtstack.virt.drivers.base import DomainState
from virtstack.virt.drivers.qemu import definition as defs
from virtstack.virt.drivers.qemu.domain_config import AFFECT_CONFIG, AFFECT_LIVE, _one_def, _targets
from virtstack.virt.drivers.qemu.domain_stats_all import INT, LLONG, STRING, UINT, ULLONG, Param
from virtstack.virt.errors import (
    ErrorCode,
    ErrorDomain,
    VirtError,
    check_flags,
    error_factory,
    exclusive_flags,
)
from virtstack.virt.xml.domain.misc import format_cpuset, parse_cpuset

if TYPE_CHECKING:
    from virtstack.virt.domain_obj import DomainObj
    from virtstack.virt.drivers.base import DomainRef

Error = error_factory(ErrorDomain.QEMU)

#: VIR_TYPED_PARAM_STRING_OKAY: the client can take string parameters
STRING_OKAY = 4
TUNING_FLAGS = AFFECT_LIVE | AFFECT_CONFIG | STRING_OKAY
#: VIR_DOMAIN_MEMORY_PARAM_UNLIMITED: what an unset memory limit reads as
MEMORY_UNLIMITED = 9007199254740991
#: QEMU_NB_MEM_PARAM, QEMU_NB_BLKIO_PARAM, QEMU_NB_NUMA_PARAM: the counts a nparams=0 query answers
NB_MEM_PARAM, NB_BLKIO_PARAM, NB_NUMA_PARAM = 3, 6, 2
#: virDomainNumatuneMemMode
NUMA_MODES = ("strict", "preferred", "interleave", "restrictive")
#: virDomainGetHostnameFlags
HOSTNAME_LEASE, HOSTNAME_AGENT = 1, 2
#: virDomainInterfaceAddressesSource; virIPAddrType
SRC_LEASE, SRC_AGENT, SRC_ARP = 0, 1, 2
IP_ADDR_IPV4 = 0
#: VIR_DOMAIN_SNAPSHOT_LIST_ROOTS .. _TOPOLOGICAL (every filter bit); VIR_DOMAIN_CHECKPOINT_LIST_* likewise
SNAPSHOT_LIST_FLAGS = 0x7FF
CHECKPOINT_LIST_FLAGS = 0xF
#: VIR_DOMAIN_SAVE_IMAGE_XML_SECURE
SAVE_IMAGE_XML_SECURE = 1
#: the scheduler parameters libvirt reports from a definition: (name, <cputune> field, type)
SCHED_PARAMS = (
    ("cpu_shares", "shares", ULLONG), ("vcpu_period", "period", ULLONG), ("vcpu_quota", "quota", LLONG),
    ("emulator_period", "emulator_period", ULLONG), ("emulator_quota", "emulator_quota", LLONG),
    ("global_period", "global_period", ULLONG), ("global_quota", "global_quota", LLONG),
    ("iothread_period", "iothread_period", ULLONG), ("iothread_quota", "iothread_quota", LLONG),
)  # fmt: skip


# -- libvirt's error shapes --------------------------------------------------------------------------
def _one_def_state(obj: DomainObj[Any], flags: int) -> Any:
    """virDomainObjGetOneDefState: LIVE and CONFIG together are an invalid argument it names itself."""
    if flags & AFFECT_LIVE and flags & AFFECT_CONFIG:
        err = VirtError(ErrorCode.INVALID_ARG, "flags", domain=ErrorDomain.DOMAIN)
        err.message = "Flags 'VIR_DOMAIN_AFFECT_LIVE' and 'VIR_DOMAIN_AFFECT_CONFIG' are mutually exclusive"
        err.args = (err.message,)
        err.template = "virDomainObjGetOneDefState"
        raise err
    return _one_def(obj, flags)


def _no_cgroup(what: str) -> VirtError:
    return Error(ErrorCode.OPERATION_INVALID, what)


def _agent_unavailable(obj: DomainObj[Any], api: str) -> VirtError:
    """qemuDomainAgentAvailable's refusal. A domain that does define the agent channel gets
    VIR_ERR_NO_SUPPORT: this driver cannot talk to a guest agent, and must not pretend to."""
    if obj.state != DomainState.RUNNING:
        return Error(ErrorCode.OPERATION_INVALID, "domain is not running")
    if not defs.has_guest_agent_channel(obj.current):
        return Error(ErrorCode.ARGUMENT_UNSUPPORTED, "QEMU guest agent is not configured")
    return VirtError(ErrorCode.NO_SUPPORT, api, domain=ErrorDomain.DOMAIN)


def _no_network(name: str | None) -> VirtError:
    """virNetworkLookupByName: this daemon runs no libvirt networks, so none can be found."""
    return VirtError(ErrorCode.NO_NETWORK, f"no network with matching name '{name}'", domain=ErrorDomain.NETWORK)


def _only_strings_if_okay(params: list[Param], flags: int) -> list[Param]:
    """virTypedParamsSerialize: string parameters go only to clients that set VIR_TYPED_PARAM_STRING_OKAY."""
    return params if flags & STRING_OKAY else [p for p in params if p[1][0] != STRING]


# -- the ARP table ------------------------------------------------------------------------------------
ARP_TABLE = Path("/proc/net/arp")
ATF_COM = 0x2  # a complete entry: the neighbour answered


def arp_table(text: str) -> list[tuple[str, str]]:
    """(IPv4 address, MAC) of the complete entries of /proc/net/arp.

    libvirt 9.0 dumps the neighbour table over netlink instead, and its length check rejects the
    dump's final NLMSG_DONE ("internal error: wrong nlmsg len" on this host); the kernel's table
    gives the same entries without that bug.
    """
    table = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 4 and int(fields[2], 16) & ATF_COM:
            table.append((fields[0], fields[3].lower()))
    return table


class DomainInfoMixin:
    """Tuning, guest-agent, snapshot-list and managed-save queries of QemuDriver."""

    if TYPE_CHECKING:

        async def _obj(self, dom: DomainRef) -> DomainObj[Any]: ...

    # -- scheduler (qemuDomainGetSchedulerType / ...ParametersFlags) -----------------------------------
    async def domain_get_scheduler_type(self, dom: DomainRef) -> tuple[str, int]:
        """An inactive domain has no cgroup: libvirt answers its defaults; a running one needs cgroup cpu."""
        obj = await self._obj(dom)
        if not obj.is_active():
            return "posix", len(SCHED_PARAMS)
        raise _no_cgroup("cgroup CPU controller is not mounted")

    async def domain_get_scheduler_parameters(self, dom: DomainRef, nparams: int) -> list[Param]:
        return await self.domain_get_scheduler_parameters_flags(dom, nparams, 0)

    async def domain_get_scheduler_parameters_flags(self, dom: DomainRef, nparams: int, flags: int) -> list[Param]:
        """The persistent definition's <cputune> when it is the one asked for, else cgroup cpu (none here)."""
        check_flags(flags, TUNING_FLAGS, "qemuDomainGetSchedulerParametersFlags", ErrorDomain.QEMU)
        obj = await self._obj(dom)
        _, config = _targets(obj, flags & ~STRING_OKAY)
        if not config:
            raise _no_cgroup("cgroup CPU controller is not mounted")
        tune = defs.sched_tuning(obj.definition)
        return [(name, (kind, tune[field])) for name, field, kind in SCHED_PARAMS][: max(nparams, 0)]

    # -- memory and block I/O tuning (qemuDomainGetMemoryParameters / ...BlkioParameters) -----------------
    async def domain_get_memory_parameters(
        self, dom: DomainRef, nparams: int, flags: int
    ) -> tuple[list[Param], int]:
        """(params, count): a nparams=0 query learns the count after the definitions are checked."""
        check_flags(flags, TUNING_FLAGS, "qemuDomainGetMemoryParameters", ErrorDomain.QEMU)
        obj = await self._obj(dom)
        _, config = _targets(obj, flags & ~STRING_OKAY)
        if nparams == 0:
            return [], NB_MEM_PARAM
        if not config:
            raise _no_cgroup("cgroup memory controller is not mounted")
        limits = defs.memory_limits_kib(obj.definition)
        names = ("hard_limit", "soft_limit", "swap_hard_limit")
        params = [(n, (ULLONG, MEMORY_UNLIMITED if v is None else v)) for n, v in zip(names, limits, strict=True)]
        return params[:nparams], 0

    async def domain_get_blkio_parameters(self, dom: DomainRef, nparams: int, flags: int) -> tuple[list[Param], int]:
        """(params, count): libvirt answers the count before it looks at the definitions."""
        check_flags(flags, TUNING_FLAGS, "qemuDomainGetBlkioParameters", ErrorDomain.QEMU)
        obj = await self._obj(dom)
        if nparams == 0:
            return [], NB_BLKIO_PARAM
        live, _ = _targets(obj, flags & ~STRING_OKAY)
        if live:
            raise _no_cgroup("blkio cgroup isn't mounted")
        weight, devices = defs.blkio_tuning(obj.definition)
        params: list[Param] = [("weight", (UINT, weight))]
        for name in ("device_weight", "device_read_iops_sec", "device_write_iops_sec", "device_read_bytes_sec",
                     "device_write_bytes_sec"):
            field = name.removeprefix("device_") if name != "device_weight" else "weight"
            value = ",".join(f"{d.path},{getattr(d, field)}" for d in devices if getattr(d, field))
            params.append((name, (STRING, value)))
        return _only_strings_if_okay(params[: min(nparams, NB_BLKIO_PARAM)], flags), 0

    # -- NUMA (qemuDomainGetNumaParameters) ---------------------------------------------------------------
    async def domain_get_numa_parameters(self, dom: DomainRef, nparams: int, flags: int) -> tuple[list[Param], int]:
        """numa_mode and numa_nodeset of <numatune><memory>; a running domain has no cpuset cgroup to read,
        so libvirt formats the definition's nodeset for it too."""
        check_flags(flags, TUNING_FLAGS, "qemuDomainGetNumaParameters", ErrorDomain.QEMU)
        obj = await self._obj(dom)
        defn = _one_def_state(obj, flags & ~STRING_OKAY)
        if nparams == 0:
            return [], NB_NUMA_PARAM
        mode, nodeset = defs.numa_memory(defn)
        params: list[Param] = [
            ("numa_mode", (INT, NUMA_MODES.index(mode or "strict"))),
            ("numa_nodeset", (STRING, format_cpuset(parse_cpuset(nodeset)) if nodeset else "")),
        ]
        return _only_strings_if_okay(params[:nparams], flags), 0

    # -- guest agent queries (qemuDomainGetTime, qemuDomainGetHostname) -----------------------------------
    async def domain_get_time(self, dom: DomainRef, flags: int) -> tuple[int, int]:
        check_flags(flags, 0, "qemuDomainGetTime", ErrorDomain.QEMU)
        obj = await self._obj(dom)
        check_active(obj)
        raise _agent_unavailable(obj, "virDomainGetTime")

    async def domain_get_hostname(self, dom: DomainRef, flags: int) -> str:
        """The agent's answer (none here), or with the lease flag the DHCP lease of a libvirt network."""
        check_flags(flags, HOSTNAME_LEASE | HOSTNAME_AGENT, "qemuDomainGetHostname", ErrorDomain.QEMU)
        if flags & HOSTNAME_LEASE and flags & HOSTNAME_AGENT:
            raise exclusive_flags("VIR_DOMAIN_GET_HOSTNAME_LEASE", "VIR_DOMAIN_GET_HOSTNAME_AGENT", ErrorDomain.QEMU, "qemuDomainGetHostname")
        obj = await self._obj(dom)
        check_active(obj)
        if not flags & HOSTNAME_LEASE:
            raise _agent_unavailable(obj, "virDomainGetHostname")
        for nic in defs.nic_facts(obj.current):
            if nic.type == "network":
                raise _no_network(nic.network)
        raise Error(ErrorCode.NO_HOSTNAME, f"no hostname found for domain {obj.name}")

    # -- interface addresses (qemuDomainInterfaceAddresses) ---------------------------------------------
    async def domain_interface_addresses(
        self, dom: DomainRef, source: int, flags: int
    ) -> list[tuple[str, str | None, list[tuple[int, str, int]]]]:
        """Leases come only from libvirt networks (this daemon has none), the agent is never connected,
        and ARP entries are matched to NICs with a host ifname."""
        check_flags(flags, 0, "qemuDomainInterfaceAddresses", ErrorDomain.QEMU)
        obj = await self._obj(dom)
        check_active(obj)
        nics = defs.nic_facts(obj.current)
        if source == SRC_LEASE:
            for nic in nics:
                if nic.type == "network":
                    raise _no_network(nic.network)
            return []
        if source == SRC_AGENT:
            raise _agent_unavailable(obj, "virDomainInterfaceAddresses")
        if source == SRC_ARP:
            if not any(nic.ifname for nic in nics):
                return []  # only NICs with a host interface have neighbours to look up
            table = arp_table(ARP_TABLE.read_text())
            return [
                (nic.ifname, nic.mac, [(IP_ADDR_IPV4, ip, 0)])
                for nic in nics if nic.ifname
                for ip, mac in table if mac == nic.mac
            ]
        raise Error(ErrorCode.ARGUMENT_UNSUPPORTED, f"Unknown IP address data source {source}")

    # -- snapshots and checkpoints: this driver never makes any -----------------------------------------
    async def domain_list_all_snapshots(self, dom: DomainRef, need_results: int, flags: int) -> tuple[list[Any], int]:
        check_flags(flags, SNAPSHOT_LIST_FLAGS, "qemuDomainListAllSnapshots", ErrorDomain.QEMU)
        await self._obj(dom)
        return [], 0

    async def domain_snapshot_num(self, dom: DomainRef, flags: int) -> int:
        check_flags(flags, SNAPSHOT_LIST_FLAGS, "qemuDomainSnapshotNum", ErrorDomain.QEMU)
        await self._obj(dom)
        return 0

    async def domain_snapshot_list_names(self, dom: DomainRef, maxnames: int, flags: int) -> list[str]:
        check_flags(flags, SNAPSHOT_LIST_FLAGS, "qemuDomainSnapshotListNames", ErrorDomain.QEMU)
        await self._obj(dom)
        return []

    async def domain_has_current_snapshot(self, dom: DomainRef, flags: int) -> int:
        check_flags(flags, 0, "qemuDomainHasCurrentSnapshot", ErrorDomain.QEMU)
        await self._obj(dom)
        return 0

    async def domain_snapshot_current(self, dom: DomainRef, flags: int) -> Any:
        check_flags(flags, 0, "qemuDomainSnapshotCurrent", ErrorDomain.QEMU)
        await self._obj(dom)
        raise Error(ErrorCode.NO_DOMAIN_SNAPSHOT, "the domain does not have a current snapshot")

    async def domain_snapshot_lookup_by_name(self, dom: DomainRef, name: str, flags: int) -> Any:
        check_flags(flags, 0, "qemuDomainSnapshotLookupByName", ErrorDomain.QEMU)
        await self._obj(dom)
        raise Error(ErrorCode.NO_DOMAIN_SNAPSHOT, f"no domain snapshot with matching name '{name}'")

    async def domain_list_all_checkpoints(self, dom: DomainRef, need_results: int, flags: int) -> tuple[list[Any], int]:
        check_flags(flags, CHECKPOINT_LIST_FLAGS, "qemuDomainListAllCheckpoints", ErrorDomain.QEMU)
        await self._obj(dom)
        return [], 0

    async def domain_checkpoint_lookup_by_name(self, dom: DomainRef, name: str, flags: int) -> Any:
        check_flags(flags, 0, "qemuDomainCheckpointLookupByName", ErrorDomain.QEMU)
        await self._obj(dom)
        raise Error(ErrorCode.NO_DOMAIN_CHECKPOINT, f"no domain checkpoint with matching name '{name}'")

    # -- managed save (qemuDomainManagedSaveGetXMLDesc) --------------------------------------------------
    async def domain_managed_save_get_xml_desc(self, dom: DomainRef, flags: int) -> str:
        """This driver never writes a managed-save image, so there is none to describe."""
        check_flags(flags, SAVE_IMAGE_XML_SECURE, "qemuDomainManagedSaveGetXMLDesc", ErrorDomain.QEMU)
        obj = await self._obj(dom)
        if obj.has_managed_save:
            # a flag loaded from elsewhere, not an image this driver could read: say so, do not invent XML
            raise VirtError(ErrorCode.NO_SUPPORT, "virDomainManagedSaveGetXMLDesc", domain=ErrorDomain.DOMAIN)
        raise Error(ErrorCode.OPERATION_INVALID, "domain does not have managed save image")
