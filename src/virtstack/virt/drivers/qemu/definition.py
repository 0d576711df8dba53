"""The QEMU driver's one doorway to the domain model: parse + QEMU defaults, format, the fields it reads.

Keeping every use of `DomainDef` and of the argv builder here means driver and process code never
depend on the model's field layout, and a change there is absorbed in one small module.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, cast

from lxml import etree

from virtstack.virt.drivers.qemu import command
from virtstack.virt.drivers.qemu.capabilities import QemuCaps
from virtstack.virt.drivers.qemu.command.model import QemuCommand, RuntimeContext
from virtstack.virt.drivers.qemu.config import QemuDriverConfig
from virtstack.virt.drivers.qemu.defaults import apply_qemu_defaults
from virtstack.virt.errors import ErrorCode, ErrorDomain, error_factory
from virtstack.virt.xml.capabilities import build_capabilities, format_capabilities, host_facts
from virtstack.virt.xml.devices.chardev import CharDev, ChrSource
from virtstack.virt.xml.domain import DomainDef, format_domain, parse_domain
from virtstack.virt.xml.domain.misc import parse_cpuset

Error = error_factory(ErrorDomain.QEMU)


def parse_for_qemu(
    xml: str, caps: QemuCaps, *, config: QemuDriverConfig | None = None, usb_addresses: bool = True
) -> DomainDef:
    """The one "parse, check virt type, apply QEMU defaults" pipeline (libvirt's virDomainDefParseString
    with the QEMU driver's post-parse and validate callbacks).

    define, createXML, domxml-to-native and the conformance runner all go through here, so the boards
    score the path production runs. `config` is qemu.conf (default: a stock libvirtd);
    `usb_addresses=False` is libvirt's pure XML conversion, which has no domain object.
    """
    defn = parse_domain(xml)
    check_virt_type(defn, caps)
    apply_qemu_defaults(defn, cast(Any, caps), config=config, usb_addresses=usb_addresses)
    return defn


def check_virt_type(defn: DomainDef, caps: QemuCaps) -> None:
    """qemuValidateDomainDef: this driver runs only type qemu and kvm; the message names the emulator
    the domain would run (its own, else the driver's default, as libvirt fills it in post-parse)."""
    if defn.type not in ("qemu", "kvm"):
        raise Error(
            ErrorCode.CONFIG_UNSUPPORTED,
            f"Emulator '{emulator(defn) or caps.emulator}' does not support virt type '{defn.type}'",
        )


def parse_config(xml: str, caps: QemuCaps, config: QemuDriverConfig | None = None) -> DomainDef:
    """An incoming definition (define/createXML); a UUID is generated when the XML has none."""
    return parse_for_qemu(xml, caps, config=config)


def parse_status_xml(xml: str) -> DomainDef:
    """A live definition saved in a status file: defaults were applied before it was written."""
    defn = parse_domain(xml)
    defn.id = None
    return defn


def live_copy(defn: DomainDef) -> DomainDef:
    """The definition a run starts from: a copy, so editing the persistent one leaves it alone."""
    return copy.deepcopy(defn)


def format_xml(defn: DomainDef, *, inactive: bool = False, secure: bool = False, domain_id: int = -1) -> str:
    shown_id = domain_id if domain_id > 0 and not inactive else None
    shown = defn if defn.id == shown_id else dataclasses.replace(defn, id=shown_id)
    return format_domain(shown, inactive=inactive, secure=secure)


def build_command(defn: DomainDef, caps: QemuCaps, config: QemuDriverConfig, runtime: RuntimeContext) -> QemuCommand:
    return command.build_command(defn, caps, config, runtime)


def xml_to_native(xml: str, caps: QemuCaps, config: QemuDriverConfig) -> str:
    """`virsh domxml-to-native qemu-argv`: one shell line, environment first."""
    return command.xml_to_native(xml, caps, config).to_shell_line()


def capabilities_xml(caps: QemuCaps, *, kvm_usable: bool) -> str:
    """`virsh capabilities`: this host and the guests the emulator runs (type kvm only if usable)."""
    return format_capabilities(build_capabilities(cast(Any, caps), host_facts(kvm_usable=kvm_usable)))


def record_ptys(defn: DomainDef, ptys: dict[str, str]) -> None:
    """Show the ptys QEMU allocated in the live definition, as libvirt does (source path, console tty).

    QEMU names each chardev "char" + the device's alias; a console on a serial port shares its alias.
    """
    devs = defn.devices
    for dev in [*devs.serials, *devs.parallels, *devs.channels, *devs.consoles]:
        path = ptys.get(_chardev_id(dev) or "")
        if dev.type == "pty" and path:
            dev.sources = [ChrSource(path=path)]
            if dev in devs.consoles:
                dev.tty = path


def console_chardev(defn: DomainDef, dev_name: str | None) -> str | None:
    """The QEMU chardev `virsh console [--devname NAME]` attaches to (qemuDomainOpenConsole's lookup:
    a console, serial or parallel port by alias; without a name the first console, else the first
    serial port); None when there is no such device."""
    devs = defn.devices
    if dev_name:
        found = next((d for d in [*devs.consoles, *devs.serials, *devs.parallels]
                      if d.alias is not None and d.alias.name == dev_name), None)
    else:
        found = devs.consoles[0] if devs.consoles else (devs.serials[0] if devs.serials else None)
    return _chardev_id(found) if found is not None else None


def _chardev_id(dev: CharDev) -> str | None:
    return f"char{dev.alias.name}" if dev.alias is not None and dev.alias.name else None


def lifecycle_actions(defn: DomainDef) -> tuple[str, str]:
    """(on_poweroff, on_reboot) with libvirt's defaults."""
    return defn.on_poweroff or "destroy", defn.on_reboot or "restart"


def memory_kib(defn: DomainDef) -> tuple[int, int]:
    """(maximum, current) memory in KiB."""
    maximum = defn.memory_kib or 0
    return maximum, defn.current_memory_kib or maximum


def vcpus(defn: DomainDef) -> int:
    """The maximum vCPU count (<vcpu>N</vcpu>)."""
    return defn.vcpus


def vcpus_current(defn: DomainDef) -> int:
    """<vcpu current='N'>: the vCPUs online at start (all of them when not given); what virDomainGetInfo
    reports as nrVirtCpu."""
    current = defn.vcpu.current if defn.vcpu is not None else None
    return int(current) if current else defn.vcpus


def pins_cpus(defn: DomainDef) -> bool:
    """Whether the definition restricts where QEMU's threads run (<vcpu cpuset>, <vcpupin>, <emulatorpin>)."""
    tune = defn.cputune
    return bool((defn.vcpu is not None and defn.vcpu.cpuset)
                or (tune is not None and (tune.vcpupins or tune.emulatorpin is not None)))


def _cpuset(text: str | None) -> set[int] | None:
    return parse_cpuset(text) if text else None


def vcpu_pins(defn: DomainDef, hostcpus: int) -> list[set[int]]:
    """Per vCPU: its <vcpupin>, else <vcpu cpuset>, else every host CPU (placement='auto' has no
    numad advice here, so it falls through as libvirt does without autoCpuset)."""
    default = _cpuset(defn.vcpu.cpuset if defn.vcpu is not None else None) or set(range(hostcpus))
    pins = [default] * defn.vcpus
    for pin in (defn.cputune.vcpupins if defn.cputune is not None else None) or []:
        cpus = _cpuset(pin.cpuset)
        if cpus is not None and pin.vcpu is not None and pin.vcpu < len(pins):
            pins[pin.vcpu] = cpus
    return pins


def emulator_pin(defn: DomainDef, hostcpus: int) -> set[int]:
    """<emulatorpin>, else <vcpu cpuset>, else every host CPU (qemuDomainGetEmulatorPinInfo)."""
    pin = defn.cputune.emulatorpin if defn.cputune is not None else None
    return (
        _cpuset(pin.cpuset if pin is not None else None)
        or _cpuset(defn.vcpu.cpuset if defn.vcpu is not None else None)
        or set(range(hostcpus))
    )


def balloon(defn: DomainDef) -> Any | None:
    """The virtio memory balloon, or None (none at all, or model='none')."""
    device = defn.devices.memballoon
    return device if device is not None and device.model != "none" else None


def os_type(defn: DomainDef) -> str:
    os_type = defn.os.type if defn.os else None
    return (os_type.value if os_type is not None else None) or "hvm"


def virt_type(defn: DomainDef) -> str:
    return defn.type or "qemu"


def emulator(defn: DomainDef) -> str | None:
    return getattr(defn.devices, "emulator", None)


def taint_flags(defn: DomainDef, *, qemu_runs_as_root: bool) -> list[str]:
    """Why a run of `defn` is tainted, libvirt's flag names in its order (qemuDomainObjCheckTaint):
    QEMU as root or raw disk I/O (high-privileges), qemu:commandline args or env (custom-argv), a host
    CD-ROM passed through (cdrom-passthrough)."""
    flags = set()
    if defn.qemu_commandline and _qemu_commandline_tags(defn.qemu_commandline) & {"arg", "env"}:
        flags.add("custom-argv")
    if qemu_runs_as_root or any(d.rawio for d in defn.devices.disks):
        flags.add("high-privileges")
    for disk in defn.devices.disks:
        if disk.device == "cdrom" and disk.type == "block" and disk.source is not None and disk.source.dev:
            flags.add("cdrom-passthrough")
    return [f for f in TAINT_MESSAGES if f in flags]


#: virDomainTaintFlags (libvirt's order, in which they are reported) -> virDomainTaintMessage, what
#: `virsh dominfo` prints after "tainted: "
TAINT_MESSAGES = {
    "custom-argv": "custom configuration parameters specified",
    "custom-monitor": "custom monitor control commands issued",
    "high-privileges": "running with undesirable elevated privileges",
    "shell-scripts": "network configuration using opaque shell scripts",
    "disk-probing": "potentially unsafe disk format probing",
    "external-launch": "managing externally launched configuration",
    "host-cpu": "potentially unsafe use of host CPU passthrough",
    "hook-script": "configuration potentially modified by hook script",
    "cdrom-passthrough": "use of host cdrom passthrough",
    "custom-dtb": "custom device tree blob used",
    "custom-ga-command": "custom guest agent control commands issued",
    "custom-hypervisor-feature": "hypervisor feature autodetection override",
    "deprecated-config": "use of deprecated configuration settings",
    "custom-device": "custom device configuration",
}


def _qemu_commandline_tags(raw_xml: str) -> set[str]:
    """Local names of the elements under <qemu:commandline> (arg, env, ...)."""
    return {etree.QName(el).localname for el in etree.fromstring(raw_xml) if isinstance(el.tag, str)}



@dataclasses.dataclass(frozen=True)
class DiskFacts:
    """What domain stats report of a disk: target name, source path, image format, device alias."""

    target: str
    path: str | None
    format: str
    alias: str | None


def disk_facts(defn: DomainDef) -> list[DiskFacts]:
    """Per <disk> in order; the path is libvirt's src->path (file, dev, dir, or a network volume name)."""
    facts = []
    for disk in defn.devices.disks:
        src = disk.source
        path = (src.file or src.dev or src.dir or src.name) if src is not None else None
        fmt = (disk.driver.type if disk.driver is not None else None) or "raw"
        alias = disk.alias.name if disk.alias is not None else None
        facts.append(DiskFacts((disk.target.dev if disk.target is not None else None) or "", path, fmt, alias))
    return facts


def net_count(defn: DomainDef) -> int:
    """How many <interface>s the domain has (libvirt's net.count)."""
    return len(defn.devices.interfaces)


# -- in-place configuration changes (setmem, setmaxmem, setvcpus, desc, metadata) ------------------
#: virDomainMetadataType -> the DomainDef field holding it
METADATA_FIELDS = ("description", "title", "metadata")


def numa_cell_count(defn: DomainDef) -> int:
    """Guest NUMA cells (<cpu><numa><cell>): their sizes fix the memory total."""
    return len(defn.cpu.numa.cells) if defn.cpu is not None and defn.cpu.numa is not None else 0


def numa_cpu_total(defn: DomainDef) -> int:
    """vCPUs named by the NUMA cells' cpus= sets (virDomainNumaGetCPUCountTotal)."""
    cells = defn.cpu.numa.cells if defn.cpu is not None and defn.cpu.numa is not None else []
    return sum(len(_cpuset(getattr(cell, "cpus", None)) or ()) for cell in cells)


def hotplug_memory_kib(defn: DomainDef) -> int | None:
    """<maxMemory>: the ceiling memory hotplug may reach, None without one."""
    return defn.max_memory.kib if defn.max_memory is not None and defn.max_memory.kib else None


def topology_vcpus(defn: DomainDef) -> int | None:
    """sockets*dies*cores*threads of <cpu><topology>, None without a topology."""
    topo = defn.cpu.topology if defn.cpu is not None else None
    if topo is None:
        return None
    return (topo.sockets or 1) * (topo.dies or 1) * (topo.cores or 1) * (topo.threads or 1)


def set_memory(defn: DomainDef, *, total_kib: int | None = None, current_kib: int | None = None) -> None:
    """Write <memory> and/or <currentMemory> (callers edit a copy, never a shared definition)."""
    if total_kib is not None:
        defn.memory_kib = total_kib
    if current_kib is not None:
        defn.current_memory_kib = current_kib


def set_vcpus(defn: DomainDef, *, maximum: int | None = None, current: int | None = None) -> None:
    """Write <vcpu>N</vcpu> and its current= (left out when every vCPU is online, as libvirt does)."""
    vcpu = defn.vcpu
    assert vcpu is not None, "parsing fills in <vcpu>"
    online = current if current is not None else vcpus_current(defn)
    if maximum is not None:
        vcpu.count = maximum
        online = min(online, maximum)
    vcpu.current = online if online != defn.vcpus else None


def metadata_field(defn: DomainDef, kind: int) -> str | None:
    """<description>, <title> or the raw <metadata> element (virDomainMetadataType order)."""
    return cast(str | None, getattr(defn, METADATA_FIELDS[kind]))


def set_metadata_field(defn: DomainDef, kind: int, value: str | None) -> None:
    setattr(defn, METADATA_FIELDS[kind], value)


# -- tuning, agent channel and NICs, as the per-domain queries of domain_info.py read them ---------------
#: <cputune> fields virDomainGetSchedulerParameters reports from a definition, in libvirt's order
SCHED_FIELDS = ("shares", "period", "quota", "emulator_period", "emulator_quota", "global_period",
                "global_quota", "iothread_period", "iothread_quota")


def sched_tuning(defn: DomainDef) -> dict[str, int]:
    """<cputune> shares/periods/quotas, 0 where unset (libvirt's zeroed def->cputune)."""
    tune = defn.cputune
    return {f: (getattr(tune, f) if tune is not None else None) or 0 for f in SCHED_FIELDS}


def memory_limits_kib(defn: DomainDef) -> tuple[int | None, int | None, int | None]:
    """<memtune> (hard_limit, soft_limit, swap_hard_limit) in KiB, None where unset."""
    tune = defn.memtune
    if tune is None:
        return None, None, None
    return tune.hard_limit, tune.soft_limit, tune.swap_hard_limit


@dataclasses.dataclass(frozen=True)
class BlkioDeviceFacts:
    """One <blkiotune><device>: its path and per-device limits (0 where unset)."""

    path: str
    weight: int
    read_iops_sec: int
    write_iops_sec: int
    read_bytes_sec: int
    write_bytes_sec: int


def blkio_tuning(defn: DomainDef) -> tuple[int, list[BlkioDeviceFacts]]:
    """<blkiotune>: the weight (0 when unset) and its devices."""
    tune = defn.blkiotune
    if tune is None:
        return 0, []
    devices = [
        BlkioDeviceFacts(d.path or "", d.weight or 0, d.read_iops_sec or 0, d.write_iops_sec or 0,
                         d.read_bytes_sec or 0, d.write_bytes_sec or 0)
        for d in tune.devices
    ]
    return tune.weight or 0, devices


def numa_memory(defn: DomainDef) -> tuple[str | None, str | None]:
    """<numatune><memory mode nodeset>: (mode, nodeset), None where absent."""
    memory = defn.numatune.memory if defn.numatune is not None else None
    return (memory.mode, memory.nodeset) if memory is not None else (None, None)


#: the virtio-serial port name QEMU's guest agent listens on (qemuFindAgentConfig)
GUEST_AGENT_PORT = "org.qemu.guest_agent.0"


def has_guest_agent_channel(defn: DomainDef) -> bool:
    """Whether a <channel><target type='virtio' name='org.qemu.guest_agent.0'/> is defined."""
    return any(
        ch.target is not None and ch.target.type == "virtio" and ch.target.name == GUEST_AGENT_PORT
        for ch in defn.devices.channels
    )


@dataclasses.dataclass(frozen=True)
class NicFacts:
    """What address queries read of an <interface>: its type, MAC, host ifname and libvirt network."""

    type: str
    mac: str | None
    ifname: str | None
    network: str | None


def nic_facts(defn: DomainDef) -> list[NicFacts]:
    facts = []
    for nic in defn.devices.interfaces:
        facts.append(NicFacts(
            nic.type or "",
            nic.mac.address if nic.mac is not None else None,
            nic.target.dev if nic.target is not None else None,
            nic.source.network if nic.source is not None else None,
        ))
    return facts
