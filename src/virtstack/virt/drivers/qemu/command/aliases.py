"""Device aliases: libvirt's qemuAssignDeviceAliases, run once before the command line is built.

Every device of the definition that has no <alias> yet gets libvirt's name for it; the builders then
use `alias_of(dev)` as the QEMU id (and derive chardev/netdev/drive ids from it), so naming lives in
one place and the live XML shows the same ids QEMU was given. User aliases ('ua-...') are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from virtstack.virt.drivers.qemu.command.context import BuildContext, Error
from virtstack.virt.errors import ErrorCode
from virtstack.virt.xml.devices.address import Alias
from virtstack.virt.xml.devices.controller import Controller
from virtstack.virt.xml.devices.disk import Disk, disk_index
from virtstack.virt.xml.devices.interface import Interface
from virtstack.virt.xml.devices.misc import MemoryDevice

_NUMBER = re.compile(r"^[+-]?\d+$")
_MEMORY_PREFIX = {"dimm": "dimm", "nvdimm": "nvdimm", "virtio-pmem": "virtiopmem", "virtio-mem": "virtiomem",
                  "sgx-epc": "epc"}  # fmt: skip


class HasAlias(Protocol):
    alias: Alias | None


def alias_of(dev: HasAlias) -> str:
    """The alias assign_aliases gave `dev` (a build without it is a bug, reported as such)."""
    if dev.alias is None or not dev.alias.name:
        raise Error(ErrorCode.INTERNAL_ERROR, f"{type(dev).__name__.lower()} does not have an alias")
    return dev.alias.name


def alias_index(dev: HasAlias, prefix: str) -> int:
    """qemuDomainDeviceAliasIndex: N of an alias '<prefix>N', else -1."""
    name = dev.alias.name if dev.alias is not None else None
    if not name or not name.startswith(prefix):
        return -1
    rest = name[len(prefix) :]
    return int(rest) if _NUMBER.match(rest) else -1


def next_index(devs: Iterable[HasAlias], prefix: str) -> int:
    """One past the highest '<prefix>N' already used among `devs` (0 when none is)."""
    return max((alias_index(d, prefix) + 1 for d in devs), default=0)


def _set(dev: HasAlias, name: str) -> None:
    if dev.alias is None or not dev.alias.name:
        dev.alias = Alias(name=name)


def find_controller(ctx: BuildContext, kind: str, index: int) -> Controller | None:
    """The first controller of `kind` with `index` (virDomainControllerFind)."""
    for ctl in ctx.defn.devices.controllers:
        if ctl.type == kind and (ctl.index or 0) == index:
            return ctl
    return None


def controller_alias(ctx: BuildContext, kind: str, index: int) -> str:
    """virDomainControllerAliasFind: the alias of controller `kind` `index`, which devices name as bus."""
    ctl = find_controller(ctx, kind, index)
    if ctl is None:
        raise Error(
            ErrorCode.INTERNAL_ERROR, f"Could not find {kind} controller with index {index} required for device"
        )
    return alias_of(ctl)


def _controller_name(ctx: BuildContext, ctl: Controller) -> str:
    """qemuAssignDeviceControllerAlias (every x86 QEMU has multiple PCI buses)."""
    idx = ctl.index or 0
    if ctl.type == "pci":
        return f"pcie.{idx}" if ctl.model == "pcie-root" else f"pci.{idx}"
    if idx == 0:
        if ctl.type == "ide" and ctx.is_i440fx:  # the PIIX IDE function built into the machine
            return "ide"
        if ctl.type == "sata" and ctx.is_q35:  # the ICH9 AHCI function built into the machine
            return "ide"
        if ctl.type == "usb":
            return "usb"
        if ctl.type == "scsi" and ctl.model == "ncr53c90":
            return "scsi"
    return f"{ctl.type}{idx}"


def _disk_name(ctx: BuildContext, disk: Disk) -> str:
    """qemuAssignDeviceDiskAlias: '<bus>C-B-U' (-T- too off lsilogic SCSI) by drive address, else by name."""
    bus = disk.bus or ""
    addr = disk.address
    if addr is not None and addr.type == "drive":
        c, b, t, u = addr.controller or 0, int(addr.bus or 0), addr.target or 0, addr.unit or 0
        if bus == "scsi":
            ctl = find_controller(ctx, "scsi", c)
            if ctl is not None and ctl.model != "lsilogic":
                return f"{bus}{c}-{b}-{t}-{u}"
        return f"{bus}{c}-{b}-{u}"
    dev = disk.target.dev if disk.target and disk.target.dev else ""
    return f"{bus}-disk{disk_index(dev)}"


def _hostdev_name(hostdevs: Sequence[HasAlias], nets: Sequence[HasAlias]) -> str:
    """qemuAssignDeviceHostdevAlias: hostdevN past every hostdevN of hostdevs and NICs."""
    return f"hostdev{max(next_index(hostdevs, 'hostdev'), next_index(nets, 'hostdev'))}"


def _net_names(ctx: BuildContext, nets: list[Interface]) -> None:
    hostdevs = ctx.defn.devices.hostdevs
    for net in nets:
        if net.type == "hostdev":
            _set(net, _hostdev_name(hostdevs, nets))
        else:
            _set(net, f"net{next_index(nets, 'net')}")


def _memory_name(mems: list[MemoryDevice], mem: MemoryDevice) -> str:
    """qemuAssignDeviceMemoryAlias: DIMMs by slot, the PCI kinds by count."""
    prefix = _MEMORY_PREFIX.get(mem.model or "", mem.model or "memory")
    if mem.model in ("dimm", "nvdimm"):
        slot = mem.address.slot if mem.address is not None and mem.address.slot is not None else 0
        return f"{prefix}{slot}"
    return f"{prefix}{next_index(mems, prefix)}"


def _chardev_names(ctx: BuildContext) -> None:
    """Parallels, serials, channels by position; a console on a serial port shows that port's alias."""
    devs = ctx.defn.devices
    for prefix, group in (("parallel", devs.parallels), ("serial", devs.serials), ("channel", devs.channels)):
        for i, dev in enumerate(group):
            _set(dev, f"{prefix}{i}")
    for i, con in enumerate(devs.consoles):
        on_serial = con.target is None or con.target.type in (None, "serial", "none")
        if on_serial and i < len(devs.serials):
            # libvirt formats such a console from serials[i] itself (virDomainDefFormatInternal)
            serial = devs.serials[i].alias
            con.alias = Alias(name=serial.name) if serial is not None else None
        else:
            _set(con, f"console{i}")


def assign_aliases(ctx: BuildContext) -> None:
    """qemuAssignDeviceAliases, in its order (the order matters where indexes are shared or counted)."""
    devs = ctx.defn.devices
    for disk in devs.disks:
        _set(disk, _disk_name(ctx, disk))
    _net_names(ctx, devs.interfaces)
    for fs in devs.filesystems:
        _set(fs, f"fs{next_index(devs.filesystems, 'fs')}")
    _by_position(devs.sounds, "sound")
    for hostdev in devs.hostdevs:
        _set(hostdev, _hostdev_name(devs.hostdevs, devs.interfaces))
    _by_position(devs.redirdevs, "redir")
    _by_position(devs.videos, "video")
    for ctl in devs.controllers:
        _set(ctl, _controller_name(ctx, ctl))
    _by_position(devs.inputs, "input")
    _chardev_names(ctx)
    _by_position(devs.hubs, "hub")
    _by_position(devs.shmems, "shmem")
    _by_position(devs.smartcards, "smartcard")
    _by_position(devs.watchdogs, "watchdog")  # libvirt 9.0 allows one: watchdog0
    if devs.memballoon is not None and devs.memballoon.model != "none":
        _set(devs.memballoon, "balloon0")
    for rng in devs.rngs:
        _set(rng, f"rng{next_index(devs.rngs, 'rng')}")
    _by_position(devs.tpms, "tpm")
    for mem in devs.memories:
        _set(mem, _memory_name(devs.memories, mem))
    if devs.vsock is not None:
        _set(devs.vsock, "vsock0")
    if devs.iommu is not None:
        _set(devs.iommu, "iommu0")


def _by_position(group: Sequence[Any], prefix: str) -> None:
    for i, dev in enumerate(group):
        _set(dev, f"{prefix}{i}")
