"""Assemble the whole QEMU command line in libvirt 9.0's order (qemuBuildCommandLine)."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

from virtstack.virt.drivers.qemu.capabilities import QemuCaps
from virtstack.virt.drivers.qemu.command import (
    chardev,
    controllers,
    disks,
    display,
    host,
    hostcpu,
    machine,
    misc,
    network,
)
from virtstack.virt.drivers.qemu.command.aliases import assign_aliases
from virtstack.virt.drivers.qemu.command.context import BuildContext, unsupported
from virtstack.virt.drivers.qemu.command.escape import json_arg, qemu_opt
from virtstack.virt.drivers.qemu.command.model import QemuCommand, RuntimeContext
from virtstack.virt.drivers.qemu.config import QemuDriverConfig
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError, error_factory
from virtstack.virt.xml.domain import DomainDef, sorted_disks

Error = error_factory(ErrorDomain.QEMU)


def build_env(ctx: BuildContext) -> dict[str, str]:
    """The environment libvirt gives QEMU: C locale, a fixed PATH, HOME/XDG dirs in the domain's lib dir."""
    home = ctx.runtime.lib_dir
    env = {"LC_ALL": "C", "PATH": ctx.config.env_path, "HOME": home}
    if ctx.config.env_user:
        env["USER"] = ctx.config.env_user
        env["LOGNAME"] = ctx.config.env_user
    env["XDG_DATA_HOME"] = f"{home}/.local/share"
    env["XDG_CACHE_HOME"] = f"{home}/.cache"
    env["XDG_CONFIG_HOME"] = f"{home}/.config"
    env.update(ctx.config.env_extra)
    env.update(ctx.env)
    return env


def boot_indexes(defn: DomainDef) -> tuple[dict[int, int], dict[int, int]]:
    """bootindex per disk and per NIC position: per-device <boot order>, else from <os><boot dev>.

    For <os><boot>, the first disk/cdrom/floppy/NIC gets the position of its kind in the list (1-based).
    """
    devs = defn.devices
    disk_boot = {i: d.boot.order for i, d in enumerate(devs.disks) if d.boot is not None and d.boot.order}
    net_boot = {i: n.boot.order for i, n in enumerate(devs.interfaces) if n.boot is not None and n.boot.order}
    if disk_boot or net_boot:
        return disk_boot, net_boot
    pos: dict[str, int] = {}
    for n, dev in enumerate(defn.os.boot_devs if defn.os else [], start=1):
        pos.setdefault(dev, n)
    kinds = {"disk": "hd", "lun": "hd", "cdrom": "cdrom", "floppy": "fd"}
    for i, d in enumerate(devs.disks):
        kind = kinds.get(d.device or "disk", "hd")
        if kind in pos:
            disk_boot[i] = pos.pop(kind)
    if "network" in pos and devs.interfaces:
        net_boot[0] = pos["network"]
    return disk_boot, net_boot


def _loader(ctx: BuildContext) -> list[str]:
    """Firmware: pflash images as -blockdev nodes named for -machine pflashN=, or -bios for a ROM."""
    os_ = ctx.defn.os
    loader = os_.loader if os_ else None
    if loader is None or not loader.path:
        return []
    if loader.type in (None, "rom"):
        return []
    names: list[str] = []
    images: list[tuple[dict[str, Any], bool, str]] = [
        ({"driver": "file", "filename": loader.path}, loader.readonly is True, loader.format or "raw")
    ]
    nv = os_.nvram if os_ else None
    if nv is not None and nv.type == "network" and nv.source is not None:
        images.append(
            (disks.network_storage(ctx, nv.source, "libvirt-pflash1-storage"), False, nv.format or "raw")
        )
    elif nv is not None and nv.type == "block" and nv.source is not None and nv.source.dev:
        images.append(({"driver": "host_device", "filename": nv.source.dev}, False, nv.format or "raw"))
    elif nv is not None and (nv.path or (nv.source is not None and nv.source.file)):
        path = nv.path or (nv.source.file if nv.source else None) or ""
        images.append(({"driver": "file", "filename": path}, False, nv.format or "raw"))
    elif loader.readonly is True:
        images.append(
            ({"driver": "file", "filename": f"{ctx.config.nvram_dir}/{ctx.defn.name}_VARS.fd"}, False, "raw")
        )
    for i, (storage, readonly, fmt) in enumerate(images):
        node = f"libvirt-pflash{i}"
        ctx.add("-blockdev", json_arg({**storage, "node-name": f"{node}-storage", "auto-read-only": True,
                                       "discard": "unmap"}))  # fmt: skip
        ctx.add("-blockdev", json_arg({"node-name": f"{node}-format", "read-only": readonly, "driver": fmt,
                                       "file": f"{node}-storage"}))  # fmt: skip
        names.append(f"{node}-format")
    return names


def _secure_pflash(ctx: BuildContext) -> None:
    loader = ctx.defn.os.loader if ctx.defn.os else None
    if loader is not None and loader.type == "pflash" and loader.secure:
        ctx.add("-global", "driver=cfi.pflash01,property=secure,value=on")


def _acpi_tables(ctx: BuildContext) -> None:
    acpi = ctx.defn.os.acpi if ctx.defn.os else None
    for table in acpi.tables if acpi else []:
        ctx.add("-acpitable", f"sig={(table.type or '').upper()},file={qemu_opt(table.path or '')}")


def _bios(ctx: BuildContext) -> None:
    os_ = ctx.defn.os
    loader = os_.loader if os_ else None
    if loader is not None and loader.path and loader.type in (None, "rom"):
        ctx.add("-bios", loader.path)


def build_command(
    defn: DomainDef, caps: QemuCaps, config: QemuDriverConfig, runtime: RuntimeContext
) -> QemuCommand:
    """The QEMU process for `defn` (defaults already applied): environment plus argv, no shell involved.

    Apart from the host lookups `runtime` carries (secrets, fds to open, firmware descriptors, DRM
    node, CD-ROM check, start time) it writes nothing and starts nothing; its one change to `defn` is
    the <alias> of each device that had none, so the live definition shows the ids QEMU was given. Anything it cannot express exactly
    raises a VirtError (mostly CONFIG_UNSUPPORTED) rather than producing a command that means something
    else; an unexpected model shape becomes INTERNAL_ERROR, never a traceback.
    """
    devices = dataclasses.replace(defn.devices, disks=sorted_disks(defn.devices.disks))
    defn = dataclasses.replace(defn, devices=devices)  # a view: the caller's definition is not touched
    ctx = BuildContext(defn=defn, caps=caps, config=config, runtime=runtime)
    try:
        _build(ctx)
    except VirtError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as e:  # a model shape we do not handle
        raise Error(ErrorCode.INTERNAL_ERROR, f"cannot build the QEMU command line: {e}") from None
    emulator = defn.devices.emulator or caps.emulator
    return QemuCommand(env=build_env(ctx), argv=[emulator, *ctx.args], pass_fds=list(ctx.pass_fds))


def _build(ctx: BuildContext) -> None:
    defn = ctx.defn
    if defn.type not in ("qemu", "kvm"):
        raise unsupported(
            f"Emulator '{defn.devices.emulator or ctx.caps.emulator}' does not support virt type '{defn.type}'"
        )
    assign_aliases(ctx)  # before anything names a device, as qemuAssignDeviceAliases runs first
    misc.reject_unsupported_devices(ctx)
    hostcpu.check_tsc(defn, ctx.runtime.host_tsc)
    host.check_firmware(ctx)
    host.check_storage(ctx)
    if defn.type == "kvm":
        hostcpu.check_guest_cpu(defn, ctx.runtime.host_cpu)
    elif ctx.runtime.host_cpu is not None:  # None: the harness's fake host, never compared
        hostcpu.check_guest_cpu(defn, hostcpu.offered(ctx.caps.host_cpu_props.get("tcg")))
    controllers.index_pci_buses(ctx)
    disk_boot, net_boot = boot_indexes(defn)
    machine.build_name(ctx)
    machine.build_master_key(ctx)
    pflash = _loader(ctx)
    machine.build_machine(ctx, pflash)
    machine.build_accel(ctx)
    machine.build_tseg(ctx)
    machine.build_cpu(ctx)
    _secure_pflash(ctx)
    _bios(ctx)
    machine.build_memory(ctx)
    machine.build_smp(ctx)
    machine.build_iothreads(ctx)
    machine.build_numa(ctx)
    machine.build_uuid_display(ctx)
    machine.build_monitor(ctx)
    machine.build_clock(ctx)
    machine.build_pm_and_acpi(ctx)
    machine.build_boot(ctx)
    _acpi_tables(ctx)
    controllers.build_pci_hole64(ctx)
    controllers.build_controllers(ctx)
    misc.build_hubs(ctx)
    disks.build_disks(ctx, disk_boot)
    network.build_interfaces(ctx, net_boot)
    chardev.build_serials(ctx)
    chardev.build_parallels(ctx)
    chardev.build_channels(ctx)
    chardev.build_consoles(ctx)
    misc.build_inputs(ctx)
    display.build_audio(ctx)
    display.build_graphics(ctx)
    display.build_videos(ctx)
    misc.build_sounds(ctx)
    misc.build_watchdogs(ctx)
    misc.build_balloon(ctx)
    misc.build_rngs(ctx)
    misc.build_vmcoreinfo(ctx)
    misc.build_sandbox(ctx)  # libvirt's order: sandbox, panic devices, vsock, -msg
    misc.build_panics(ctx)
    misc.build_vsock(ctx)
    misc.build_msg(ctx)


def xml_to_native(
    xml: str,
    caps: QemuCaps,
    config: QemuDriverConfig,
    *,
    monitor_fd: int | None = None,
    pretend_ethernet: bool = True,
    cdrom_check: Any = None,
    prepare: Callable[[RuntimeContext], None] | None = None,
) -> QemuCommand:
    """`virsh domxml-to-native qemu-argv`: parse, QEMU defaults, build with id -1 and libvirt's paths.

    Like libvirt, every <interface> is first turned into a plain tap (`pretend_ethernet`) and given a
    placeholder fd, since no real tap device is opened for a command that is only printed.
    `prepare` may adjust the runtime context (fds, secrets, host lookups) before the build.
    """
    # the same parse -> virt type check -> defaults pipeline as define (imported here: definition
    # imports this package)
    from virtstack.virt.drivers.qemu.definition import parse_for_qemu

    defn = copy.deepcopy(parse_for_qemu(xml, caps, config=config))
    runtime = RuntimeContext.for_domain(defn.name or "", -1, config, monitor_fd=monitor_fd)
    runtime.cdrom_check = cdrom_check
    first_fd = 25
    for i, iface in enumerate(defn.devices.interfaces):
        if pretend_ethernet:
            defn.devices.interfaces[i] = network.to_pretend_ethernet(iface)
        if defn.devices.interfaces[i].type in ("ethernet", "network", "bridge", "direct"):
            runtime.fds[f"tap:net{i}"] = first_fd
            first_fd += 1
    runtime.allocated_tls_graphics = display.pretend_graphics_ports(
        defn, config.spice_tls, config.spice_auto_unix_socket
    )
    if prepare is not None:
        prepare(runtime)
    return build_command(defn, caps, config, runtime)
