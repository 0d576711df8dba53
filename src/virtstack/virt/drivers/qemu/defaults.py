"""Post-parse defaults of libvirt's QEMU driver: what `virsh define` adds before writing the config back."""

from __future__ import annotations

import os
import random
import re
import uuid as uuidlib
from typing import Any, Protocol

from virtstack.virt.drivers.qemu.config import QemuDriverConfig
from virtstack.virt.errors import ErrorCode, ErrorDomain, error_factory
from virtstack.virt.xml.devices.address import Address
from virtstack.virt.xml.devices.chardev import ChrTarget, Console, Serial
from virtstack.virt.xml.devices.controller import (
    PCI_MODEL_NAMES,
    Controller,
    ControllerModel,
    ControllerTarget,
    Master,
)
from virtstack.virt.xml.devices.disk import Driver
from virtstack.virt.xml.devices.graphics import Listen
from virtstack.virt.xml.devices.interface import Mac
from virtstack.virt.xml.devices.misc import Audio, Input, MemBalloon
from virtstack.virt.xml.devices.video import Video, VideoModel
from virtstack.virt.xml.domain import DomainDef
from virtstack.virt.xml.domain.cpu import CPU, CPUModel
from virtstack.virt.xml.domain.os import OS, Boot, OSType

Error = error_factory(ErrorDomain.QEMU)
DomError = error_factory(ErrorDomain.DOMAIN)

DEFAULT_EMULATOR = "/usr/bin/qemu-system-x86_64"


class MachineLike(Protocol):
    name: str
    alias: str | None
    is_default: bool
    default_cpu_type: str | None


class CapsLike(Protocol):
    """What the defaults need from `QemuCaps` (drivers/qemu/capabilities.py); tests may pass their own."""

    emulator: str
    arch: str
    cpu_models: Any

    def canonical_machine(self, name: str) -> str: ...

    def default_machine(self) -> Any: ...

    def machine(self, name: str) -> Any: ...

    def has_type(self, qom_type: str) -> bool: ...


def is_q35(defn: DomainDef) -> bool:
    m = machine_of(defn)
    return m == "q35" or m.startswith("pc-q35")


def is_i440fx(defn: DomainDef) -> bool:
    m = machine_of(defn)
    return m == "pc" or m.startswith(("pc-i440fx", "pc-0", "pc-1"))


def machine_of(defn: DomainDef) -> str:
    return (defn.os.type.machine if defn.os and defn.os.type and defn.os.type.machine else "") or ""


def generate_mac(rng: random.Random | None = None) -> str:
    """libvirt's QEMU prefix 52:54:00 plus three random bytes."""
    r = rng or random.SystemRandom()
    return "52:54:00:" + ":".join(f"{r.randrange(256):02x}" for _ in range(3))


def apply_qemu_defaults(
    defn: DomainDef, caps: CapsLike, *, config: QemuDriverConfig | None = None, usb_addresses: bool = True
) -> None:
    """Fill in what libvirt's QEMU driver fills in at define time (post-parse + address assignment).

    `config` is qemu.conf (default: a stock libvirtd). `usb_addresses=False` mirrors libvirt's pure XML
    conversion (no domain object), which leaves USB ports unassigned.
    """
    cfg = config or QemuDriverConfig.system()
    from virtstack.virt.drivers.qemu.addresses import assign_addresses, assign_drive_addresses

    if defn.uuid is None:
        defn.uuid = uuidlib.uuid4()
    _os_defaults(defn, caps)
    _cpu_defaults(defn, caps)
    _default_devices(defn, caps)
    _device_defaults(defn, caps)
    assign_drive_addresses(defn)
    _validate_controllers(defn)
    _implicit_devices(defn, caps, cfg)
    assign_addresses(defn, usb=usb_addresses)
    _validate(defn, cfg)


def _os_defaults(defn: DomainDef, caps: CapsLike) -> None:
    if defn.os is None:
        defn.os = OS(type=OSType(value="hvm"))
    ost = defn.os.type or OSType(value="hvm")
    defn.os.type = ost
    if ost.value != "hvm":
        raise DomError(ErrorCode.OS_TYPE, ost.value)
    if ost.arch is None:
        ost.arch = caps.arch or "x86_64"
    if ost.arch not in ("x86_64", "i686"):
        raise Error(ErrorCode.CONFIG_UNSUPPORTED, f"No guest options available for arch '{ost.arch}'")
    if ost.machine is None:
        dm = caps.default_machine()
        ost.machine = dm.name if dm else "pc"
    else:
        ost.machine = caps.canonical_machine(ost.machine)
    if not (is_q35(defn) or is_i440fx(defn) or ost.machine in ("isapc", "microvm", "none")):
        raise Error(
            ErrorCode.CONFIG_UNSUPPORTED, f"Emulator '{caps.emulator}' does not support machine type '{ost.machine}'"
        )
    if defn.devices.emulator is None:
        defn.devices.emulator = caps.emulator or DEFAULT_EMULATOR
        if ost.arch == "i686" and os.path.exists(I386_EMULATOR):
            defn.devices.emulator = I386_EMULATOR  # libvirt picks the binary named after the guest arch
    elif not os.path.exists(defn.devices.emulator):
        raise Error(
            ErrorCode.SYSTEM_ERROR, f"Cannot check QEMU binary {defn.devices.emulator}: No such file or directory"
        )
    devs = defn.devices
    per_device_boot = any(
        getattr(x, "boot", None) is not None for x in [*devs.disks, *devs.interfaces, *devs.hostdevs, *devs.redirdevs]
    )
    if per_device_boot and defn.os.boot:
        raise DomError(
            ErrorCode.CONFIG_UNSUPPORTED, "per-device boot elements cannot be used together with os/boot elements"
        )
    if not defn.os.boot and not per_device_boot:
        defn.os.boot = [Boot(dev="hd")]


I386_EMULATOR = "/usr/bin/qemu-system-i386"


def _default_cpu_model(defn: DomainDef, caps: CapsLike) -> str | None:
    """The machine type's default CPU as QEMU reports it (qemu64-x86_64-cpu -> qemu64), if known."""
    m = caps.machine(machine_of(defn))
    cpu_type = getattr(m, "default_cpu_type", None) if m is not None else None
    if not cpu_type or not caps.cpu_models:
        return None
    model = str(cpu_type).removesuffix(f"-{caps.arch or 'x86_64'}-cpu")
    emulator = defn.devices.emulator or ""
    if os.path.basename(emulator) == os.path.basename(I386_EMULATOR) and model == "qemu64":
        return "qemu32"  # the i386 binary's default; an i686 guest on the x86_64 binary keeps qemu64
    return model


def _cpu_defaults(defn: DomainDef, caps: CapsLike) -> None:
    cpu = defn.cpu
    default_model = _default_cpu_model(defn, caps)
    if cpu is None:
        if default_model is None:
            return
        cpu = defn.cpu = CPU()
    if cpu.mode is None and default_model is None and (cpu.model is None or cpu.model.name is None):
        return  # a bare <cpu> carrying only topology / NUMA cells
    if cpu.mode is None:
        cpu.mode = "custom"
    if cpu.mode == "custom":
        if (cpu.model is None or cpu.model.name is None) and default_model is None:
            pass
        elif cpu.model is None or cpu.model.name is None:
            if cpu.model is None:
                cpu.model = CPUModel()
            cpu.model.name = default_model
            cpu.model.fallback = "forbid"
            if cpu.check is None:
                cpu.check = "none"  # the default model libvirt adds is never checked against the host
        if cpu.match is None and cpu.model is not None:
            cpu.match = "exact"
        if cpu.model is not None and cpu.model.fallback is None:
            cpu.model.fallback = "allow"
        if cpu.check is None:
            cpu.check = "none" if defn.type == "qemu" else "partial"
    if cpu.mode != "custom" and cpu.model is not None:
        cpu.model.fallback = None  # only custom CPUs fall back to another model
        if cpu.model.name is None and cpu.model.vendor_id is None:
            cpu.model = None
    if cpu.mode in ("host-passthrough", "maximum"):
        if cpu.check is None:
            cpu.check = "none"
        if cpu.migratable is None and cpu.mode == "host-passthrough":
            cpu.migratable = bool(caps.cpu_models)  # QEMU's 'migratable' CPU property, known from the probe
    elif cpu.mode == "host-model" and cpu.check is None:
        cpu.check = "partial"
    for f in cpu.features:
        if f.policy is None:
            f.policy = "require"


def _find_controller(defn: DomainDef, ctype: str, index: int = 0) -> Controller | None:
    for c in defn.devices.controllers:
        if c.type == ctype and (c.index or 0) == index:
            return c
    return None


def _default_usb_model(caps: CapsLike, q35: bool, implicit: bool) -> str | None:
    """libvirt picks the USB controller model from the devices the binary has."""
    if q35 and implicit and caps.has_type("qemu-xhci"):
        return "qemu-xhci"
    if caps.has_type("piix3-usb-uhci"):
        return "piix3-uhci"
    return None


def _default_devices(defn: DomainDef, caps: CapsLike) -> None:
    """qemuDomainDefAddDefaultDevices: USB, SATA, PCI root, memballoon by machine type."""
    devs = defn.devices
    q35 = is_q35(defn)
    pc = is_i440fx(defn)
    usb_model = _default_usb_model(caps, q35, True)
    if (pc or (q35 and usb_model is not None)) and _find_controller(defn, "usb") is None:
        devs.controllers.append(Controller(type="usb", index=0, model=usb_model))
    if q35 and _find_controller(defn, "sata") is None:
        devs.controllers.append(Controller(type="sata", index=0))
    root_model = "pcie-root" if q35 else "pci-root"
    if (q35 or pc) and not any(c.type == "pci" and c.model in ("pci-root", "pcie-root") for c in devs.controllers):
        devs.controllers.append(Controller(type="pci", index=0, model=root_model))
    if devs.memballoon is None:
        devs.memballoon = MemBalloon(model="virtio")


def _device_defaults(defn: DomainDef, caps: CapsLike) -> None:
    """Per-device post-parse (qemuDomainDeviceDefPostParse)."""
    devs = defn.devices
    for disk in devs.disks:
        if disk.device in ("cdrom", "floppy") and _source_empty(disk.source):
            disk.type = "file"
            disk.source = None
        encs = [disk.encryption]
        src, layer = disk.source, disk.backing
        while True:
            encs.append(src.encryption if src else None)
            if layer is None:
                break
            src, layer = layer.source, layer.backing
        for e in encs:
            if e is not None and e.format in ("luks", "luks2", "luks-any") and e.engine is None:
                e.engine = "qemu"
        if disk.driver is None:
            disk.driver = Driver()
        if disk.driver.name is None:
            disk.driver.name = "qemu"
        if disk.driver.type is None and disk.type != "volume":
            disk.driver.type = "raw"
    for ctl in devs.controllers:
        if ctl.index is None:
            ctl.index = 1 + max((c.index or 0 for c in devs.controllers if c.type == ctl.type and c.index is not None),
                                default=-1)
        if ctl.type == "usb" and ctl.model is None:
            ctl.model = _default_usb_model(caps, is_q35(defn), False)
        if ctl.type == "usb" and ctl.master is None and ctl.model in ("ich9-uhci1", "ich9-uhci2", "ich9-uhci3"):
            ctl.master = Master(startport={"ich9-uhci1": 0, "ich9-uhci2": 2, "ich9-uhci3": 4}[ctl.model])
        if ctl.type == "scsi" and ctl.model is None:
            ctl.model = "lsilogic"
        if ctl.type == "pci":
            _pci_controller_defaults(ctl, caps)
    for iface in devs.interfaces:
        if iface.model is None and iface.type != "hostdev":
            iface.model = "virtio" if iface.type == "vdpa" else "rtl8139"  # qemuDomainDefaultNetModel on x86
        if iface.mac is None:
            iface.mac = Mac()
        if iface.mac.address is None:
            iface.mac.address = generate_mac()
    for inp in devs.inputs:
        if inp.bus is None:
            inp.bus = "usb" if inp.type == "tablet" else "ps2"
    for g in devs.graphics:
        if g.type == "spice" and g.autoport == "no" and g.port is None and g.tls_port is None:
            g.autoport = None  # libvirt writes autoport for spice only next to a port
        if g.type in ("vnc", "spice"):
            if g.type == "vnc" and g.port is not None and g.port >= 0 and g.autoport is None:
                g.autoport = "no"
            if g.type == "vnc" and g.socket is not None:
                g.autoport = None
            if g.port == -1 or (g.port is None and g.autoport is None and g.type == "vnc" and g.socket is None):
                g.autoport = "yes"
            if g.autoport == "yes" and g.type == "vnc":
                g.port = -1
            if not g.listens:
                if g.socket is not None:
                    g.listens = [Listen(type="socket", socket=g.socket)]
                elif g.listen is not None:
                    g.listens = [Listen(type="address", address=g.listen)]
                elif g.type == "spice" and g.port is None and g.tls_port is None and g.autoport is None:
                    g.listens = [Listen(type="none")]
                else:
                    g.listens = [Listen(type="address")]
            elif g.listen is None and g.listens[0].type == "address" and g.listens[0].address:
                g.listen = g.listens[0].address
    primary = next((v for v in devs.videos if v.model is not None and v.model.primary == "yes"), None)
    if primary is not None and devs.videos[0] is not primary:
        devs.videos.remove(primary)
        devs.videos.insert(0, primary)  # libvirt keeps the primary video first
    for v in devs.videos[1:]:
        if v.model is not None:
            v.model.primary = None
    for i, v in enumerate(devs.videos):
        _video_defaults(v, caps, primary=(i == 0))
    _chardev_defaults(defn)
    for ch in devs.channels:
        if ch.type == "unix" and ch.sources and all(s.path is None for s in ch.sources):
            ch.sources = []  # libvirt generates the socket path at start; it is not part of the config


def _source_empty(src: object) -> bool:
    if src is None:
        return True
    return not any(getattr(src, k) for k in ("file", "dev", "dir", "name", "volume", "pool", "hosts"))


def _pci_controller_defaults(ctl: Controller, caps: CapsLike) -> None:
    model = ctl.model
    if model is None:
        ctl.model = model = "pci-root" if ctl.index == 0 else "pci-bridge"
    name = PCI_MODEL_NAMES.get(model)
    if model == "pcie-root-port" and not caps.has_type("pcie-root-port"):
        name = "ioh3420"  # the Intel root port older binaries (or an unprobed one) are assumed to have
    if name is not None and ctl.model_name is None:
        ctl.model_name = ControllerModel(name=name)
    if model == "pci-bridge":
        ctl.target = ctl.target or ControllerTarget()
        if ctl.target.chassis_nr is None:
            ctl.target.chassis_nr = ctl.index
    if model in ("pcie-root-port", "pcie-switch-downstream-port"):
        ctl.target = ctl.target or ControllerTarget()
        if ctl.target.chassis is None:
            ctl.target.chassis = ctl.index


VIDEO_DEFAULTS: dict[str, dict[str, int]] = {
    "cirrus": {"vram": 16384},
    "vga": {"vram": 16384},
    "vmvga": {"vram": 16384},
    "bochs": {"vram": 16384},
    "qxl": {"ram": 65536, "vram": 65536, "vgamem": 16384},
}


def _video_defaults(v: Video, caps: CapsLike, primary: bool) -> None:
    if v.model is None:
        v.model = VideoModel()
    m = v.model
    if m.type is None or m.type == "default":
        m.type = "cirrus" if caps.has_type("cirrus-vga") else "vga"
    for k, val in VIDEO_DEFAULTS.get(m.type, {}).items():
        if getattr(m, k) is None:
            setattr(m, k, val)
    if m.type not in ("none",) and m.heads is None:
        m.heads = 1
    if primary and m.type != "none" and m.primary is None:
        m.primary = "yes"


def _serial_model(target_type: str | None) -> str | None:
    """The QEMU device model libvirt assigns to a serial target type."""
    return {
        "isa-serial": "isa-serial", "usb-serial": "usb-serial", "pci-serial": "pci-serial",
        "isa-debug": "isa-debugcon", "spapr-vio-serial": "spapr-vty", "system-serial": "pl011",
        "sclp-serial": "sclpconsole",
    }.get(target_type or "")


def _chardev_defaults(defn: DomainDef) -> None:
    devs = defn.devices
    # virDomainDefAddConsoleCompat: the first console of type serial is a view of the first serial port.
    if devs.consoles:
        first = devs.consoles[0]
        tgt = first.target or ChrTarget()
        first.target = tgt
        if tgt.type is None or tgt.type == "serial":
            tgt.type = "serial"
            if not devs.serials:
                devs.serials.append(
                    Serial(type=first.type, sources=list(first.sources), protocol=first.protocol,
                           target=ChrTarget(port=0))
                )
            tgt.port = 0 if tgt.port is None else tgt.port
            if devs.serials:
                s0 = devs.serials[0]  # the console shows the first serial port's backend
                first.type, first.sources, first.protocol, first.log = s0.type, list(s0.sources), s0.protocol, s0.log
    s0_type = devs.serials[0].target.type if devs.serials and devs.serials[0].target else None
    if not devs.consoles and devs.serials and s0_type in (None, "isa-serial"):
        s0 = devs.serials[0]  # virDomainDefAddConsoleCompat: an ISA serial 0 doubles as the console
        port = s0.target.port if s0.target and s0.target.port is not None else 0
        devs.consoles.append(
            Console(type=s0.type, sources=list(s0.sources), protocol=s0.protocol, log=s0.log,
                    target=ChrTarget(type="serial", port=port))
        )
    used: set[int] = set()
    for s in devs.serials:
        tgt = s.target or ChrTarget()
        s.target = tgt
        if tgt.type is None:
            tgt.type = "isa-serial"
        if tgt.port is None:
            port = 0
            while port in used:
                port += 1
            tgt.port = port
        used.add(tgt.port)
        if tgt.model is None and tgt.type in ("isa-serial", "usb-serial", "pci-serial", "isa-debug"):
            tgt.model = _serial_model(tgt.type)
    for i, c in enumerate(devs.consoles):
        tgt = c.target or ChrTarget()
        c.target = tgt
        if tgt.type is None:
            tgt.type = "serial"  # x86's default for every console; only the first may be one (validated)
        if tgt.port is None:
            tgt.port = i
    for ch in devs.channels:
        if ch.target is not None and ch.target.type == "virtio" and ch.target.state is not None:
            ch.target.state = None


def _implicit_devices(defn: DomainDef, caps: CapsLike, cfg: QemuDriverConfig) -> None:
    """virDomainDefAddImplicitDevices: controllers for disks and channels, inputs, video, audio."""
    devs = defn.devices
    for bus in ("scsi", "fdc", "ide", "sata"):  # virDomainDefAddImplicitControllers' order
        top = -1
        for d in devs.disks:
            if d.bus == bus:
                ctl = d.address.controller if d.address and d.address.type == "drive" else 0
                top = max(top, ctl or 0)
        for idx in range(top + 1):
            if _find_controller(defn, bus, idx) is None:
                model = "lsilogic" if bus == "scsi" else None
                devs.controllers.append(Controller(type=bus, index=idx, model=model))
    for ch in [*devs.channels, *devs.consoles]:
        if ch.target is not None and ch.target.type == "virtio":
            idx = (ch.address.controller if ch.address and ch.address.type == "virtio-serial" else 0) or 0
            if _find_controller(defn, "virtio-serial", idx) is None:
                devs.controllers.append(Controller(type="virtio-serial", index=idx))
    _fill_pci_controllers(defn, caps)
    if is_q35(defn) or is_i440fx(defn):
        for kind in ("mouse", "keyboard"):
            if not any(i.type == kind and i.bus == "ps2" for i in devs.inputs):
                devs.inputs.append(Input(type=kind, bus="ps2"))
    if devs.graphics and not devs.videos:
        v = Video()
        _video_defaults(v, caps, primary=True)
        devs.videos.append(v)
    if not devs.audios:
        audio = _default_audio(defn, cfg)
        if audio is not None:
            devs.audios.append(Audio(id=1, type=audio))
    for i, a in enumerate(devs.audios):
        if a.id is None:
            a.id = i + 1


def _default_audio(defn: DomainDef, cfg: QemuDriverConfig) -> str | None:
    """qemuDomainDefAddDefaultAudioBackend: spice carries audio; sdl, or vnc / no display when qemu.conf
    allows host audio, pass the host's driver through; otherwise a silent 'none' backend."""
    graphics = defn.devices.graphics
    if not graphics:
        return cfg.host_audio_driver if cfg.nographics_allow_host_audio else "none"
    decision: str | None = None  # libvirt walks all graphics: the last one that carries audio decides
    for g in graphics:
        if g.type == "spice":
            decision = "spice"
        elif g.type == "sdl" or (g.type == "vnc" and cfg.vnc_allow_host_audio):
            decision = "host"
        elif g.type == "vnc":
            decision = "none"
    if decision == "host":
        return cfg.host_audio_driver  # None: QEMU picks, libvirt writes nothing
    return decision


def _fill_pci_controllers(defn: DomainDef, caps: CapsLike) -> None:
    """PCI controller indexes must be contiguous: libvirt adds the missing ones as bridges/root ports."""
    devs = defn.devices
    pci = [c for c in devs.controllers if c.type == "pci"]
    if not pci:
        return
    top = max(c.index or 0 for c in pci)
    for a in _pci_addresses(defn):
        top = max(top, int(a.bus or 0))
    have = {c.index for c in pci}
    model = "pcie-root-port" if is_q35(defn) else "pci-bridge"
    for idx in range(1, top + 1):
        if idx not in have:
            c = Controller(type="pci", index=idx, model=model)
            _pci_controller_defaults(c, caps)
            devs.controllers.append(c)


def _pci_addresses(defn: DomainDef) -> list[Address]:
    devs = defn.devices
    items: list[object] = [*devs.disks, *devs.controllers, *devs.interfaces, *devs.videos, *devs.rngs,
                           *devs.inputs, *devs.watchdogs, devs.memballoon]
    out = []
    for it in items:
        a = getattr(it, "address", None)
        if isinstance(a, Address) and a.type == "pci":
            out.append(a)
    return out


def _validate_os(defn: DomainDef) -> None:
    """virDomainDefOSValidate: firmware autoselection against manual loader/nvram settings."""
    os_ = defn.os
    if os_ is None:
        return
    loader, nvram = os_.loader, os_.nvram
    # the QEMU driver's own checks (qemuValidateDomainDef) run before the generic ones below
    uefi = os_.firmware == "efi" or (loader is not None and loader.type == "pflash")
    if uefi and not (defn.features is not None and defn.features.acpi):
        raise Error(ErrorCode.CONFIG_UNSUPPORTED, "UEFI requires ACPI on this architecture")
    if loader is not None and loader.secure is True:
        if not is_q35(defn):
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, "Secure boot is supported with q35 machine types only")
        arch = os_.type.arch if os_.type is not None else None
        if arch not in (None, "x86_64"):
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, "Secure boot is supported for x86_64 architecture only")
    if os_.firmware == "bios" and nvram is not None:
        raise DomError(ErrorCode.XML_DETAIL, "firmware type 'bios' does not support nvram")
    if os_.firmware is not None and loader is not None and loader.secure is False:
        raise DomError(
            ErrorCode.XML_DETAIL, "loader attribute 'secure' cannot be specified when firmware autoselection is enabled"
        )
    if os_.firmware is None:
        if os_.firmware_info is not None and os_.firmware_info.features:
            raise DomError(
                ErrorCode.XML_DETAIL,
                "cannot use feature-based firmware autoselection when firmware autoselection is disabled",
            )
        if loader is not None and not loader.path:
            raise DomError(ErrorCode.XML_DETAIL, "no loader path specified and firmware auto selection disabled")
    if loader is not None and loader.stateless and nvram is not None and nvram.template:
        raise DomError(ErrorCode.XML_DETAIL, "NVRAM template is not permitted when loader is stateless")


def _validate_cpu_features(defn: DomainDef) -> None:
    """CPU and machine feature checks libvirt's QEMU validation does without asking the host."""
    cpu = defn.cpu
    if cpu is not None:
        if cpu.cache is not None and cpu.cache.mode == "passthrough":
            if cpu.cache.level is not None:
                raise Error(ErrorCode.CONFIG_UNSUPPORTED, "unsupported CPU cache level for mode 'passthrough'")
            if cpu.mode not in ("host-passthrough", "maximum"):
                raise Error(
                    ErrorCode.CONFIG_UNSUPPORTED,
                    "CPU cache mode 'passthrough' can only be used with 'host-passthrough' / 'maximum' CPUs",
                )
        mpa = cpu.maxphysaddr
        if mpa is not None and mpa.mode == "passthrough" and mpa.bits is not None:
            raise Error(
                ErrorCode.CONFIG_UNSUPPORTED,
                "CPU maximum physical address bits number specification cannot be used with mode='passthrough'",
            )
    feats = defn.features
    if feats is not None:
        if feats.hpt is not None:
            raise Error(
                ErrorCode.CONFIG_UNSUPPORTED,
                f"The 'hpt' feature is not supported for architecture 'x86_64' or machine type '{machine_of(defn)}'",
            )
        if feats.smm is not None and feats.smm.tseg_kib is not None:
            if not is_q35(defn):
                raise Error(ErrorCode.CONFIG_UNSUPPORTED, "SMM TSEG is only supported with q35 machine type")
            if feats.smm.tseg_kib % 1024:
                raise Error(ErrorCode.CONFIG_UNSUPPORTED, "SMM TSEG size must be divisible by 1 MiB")
    types = {g.type for g in defn.devices.graphics}
    if "egl-headless" in types and types - {"egl-headless", "vnc", "spice"}:
        raise Error(
            ErrorCode.CONFIG_UNSUPPORTED,
            "graphics type 'egl-headless' is only supported with one of: 'vnc', 'spice' graphics types",
        )


def _validate_disks(defn: DomainDef) -> None:
    for d in defn.devices.disks:
        fmt = d.driver.type if d.driver else None
        dev = d.target.dev if d.target else ""
        if d.type == "dir" and fmt != "fat":
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, "storage type 'dir' requires use of storage format 'fat'")
        if d.type == "dir" and not d.readonly:
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, "virtual FAT storage can't be accessed in read-write mode")
        if d.shareable and fmt not in (None, "raw"):
            raise Error(
                ErrorCode.CONFIG_UNSUPPORTED, f"shared access for disk '{dev}' requires use of supported storage format"
            )
        if d.readonly and d.device == "disk" and d.bus in ("ide", "sata"):
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, f"readonly {d.bus} disks are not supported")
        if d.sgio == "unfiltered":
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, "unfiltered sgio is no longer supported")


def _validate_devices(defn: DomainDef) -> None:
    """qemuValidateDomainDef* checks that need no host state."""
    devs = defn.devices
    _validate_disks(defn)
    if "preserve" in (defn.on_reboot, defn.on_poweroff):
        raise Error(
            ErrorCode.CONFIG_UNSUPPORTED, "qemu driver doesn't support the 'preserve' action for 'on_reboot'/'on_poweroff'"
        )
    spice = any(g.type == "spice" for g in devs.graphics)
    chardevs: list[Any] = [*devs.channels, *devs.serials, *devs.consoles, *devs.smartcards, *devs.redirdevs]
    if not spice and any(getattr(c, "type", None) == "spicevmc" for c in chardevs):
        raise Error(ErrorCode.CONFIG_UNSUPPORTED, "chardev 'spicevmc' not supported without spice graphics")
    for n in devs.interfaces:
        if n.mtu is not None and n.type == "user":
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, "setting MTU on interface type user is not supported yet")
    for v in devs.videos[1:]:
        if v.model is not None and v.model.type == "ramfb":
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, "video type 'ramfb' is only valid as primary video device")
    if len(devs.watchdogs) > 1:
        raise Error(ErrorCode.INTERNAL_ERROR, "only a single watchdog device is supported")
    usb_off = any(c.type == "usb" and c.model == "none" for c in devs.controllers)
    if usb_off and any(i.bus == "usb" for i in devs.inputs):
        raise Error(ErrorCode.CONFIG_UNSUPPORTED, "Can't add USB input device. USB bus is disabled")
    if usb_off and any(d.bus == "usb" for d in devs.disks):
        raise Error(
            ErrorCode.CONFIG_UNSUPPORTED,
            "USB is disabled for this domain, but USB devices are present in the domain XML",
        )
    gl = [g for g in devs.graphics if g.type == "egl-headless" or (g.gl is not None and g.gl.enable == "yes")]
    if len(gl) > 1:
        raise Error(ErrorCode.CONFIG_UNSUPPORTED, "multiple OpenGL displays are not supported by QEMU")
    for c in devs.controllers:
        if c.type == "usb" and c.model == "qemu-xhci" and (c.ports or 0) > 15:
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, "'qemu-xhci' controller only supports up to '15' ports")
        if c.type == "pci" and c.model == "pcie-expander-bus" and not is_q35(defn):
            raise Error(
                ErrorCode.CONFIG_UNSUPPORTED, "pcie-expander-bus controllers are not supported with this machine type"
            )
        if c.type == "pci" and c.index == 0 and is_q35(defn) and c.model == "pci-root":
            raise DomError(
                ErrorCode.XML_ERROR,
                "The PCI controller with index='0' must be model='pcie-root' for this machine type, "
                "but model='pci-root' was found instead",
            )
    for s in devs.serials:
        t = s.target
        if t is not None and t.type not in (None, "isa-serial", "usb-serial", "pci-serial", "isa-debug"):
            raise Error(
                ErrorCode.CONFIG_UNSUPPORTED,
                f"Serial device with target type '{t.type}' and target model '{t.model or _serial_model(t.type)}' "
                "not compatible with "
                "guest architecture or machine type",
            )
    for i in devs.inputs:
        if i.model in ("virtio", "virtio-transitional", "virtio-non-transitional") and i.bus not in (None, "virtio"):
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, f"only bus 'virtio' is supported for input model '{i.model}'")
        if i.model in ("virtio-transitional", "virtio-non-transitional") and i.type != "passthrough":
            raise Error(
                ErrorCode.CONFIG_UNSUPPORTED,
                f"virtio (non-)transitional models are not supported for input type={i.type}",
            )
    for v in devs.videos:
        if v.model is not None and v.model.type == "ramfb" and v.address is not None:
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, "address not supported for video type ramfb")


def _validate_controllers(defn: DomainDef) -> None:
    """Controller indexes are unique per type (USB companions share their EHCI's index)."""
    seen: set[tuple[str, int]] = set()
    usb_buses: set[int] = set()
    usb = [c for c in defn.devices.controllers if c.type == "usb"]
    if any(c.model == "none" for c in usb) and len(usb) > 1:
        raise DomError(ErrorCode.XML_DETAIL, "Can't add another USB controller: USB is disabled for this domain")
    for c in defn.devices.controllers:
        if c.type == "usb":
            # USB controllers may share an index (EHCI and its UHCI companions form one bus), but two
            # bus-owning controllers on one index are refused when libvirt lays out the USB buses
            if not (c.model or "").startswith("ich9-uhci"):
                if (c.index or 0) in usb_buses:
                    raise DomError(ErrorCode.XML_ERROR, f"Duplicate USB controllers with index {c.index or 0}")
                usb_buses.add(c.index or 0)
            continue
        key = (c.type or "", c.index or 0)
        if key in seen:
            raise DomError(ErrorCode.XML_ERROR, f"Multiple '{c.type}' controllers with index '{c.index}'")
        seen.add(key)


def _validate(defn: DomainDef, cfg: QemuDriverConfig) -> None:
    from virtstack.virt.drivers.qemu.command.validate import validate_definition, validate_graphics

    devs = defn.devices
    for d in devs.disks:  # parse-time in libvirt
        dev = d.target.dev if d.target and d.target.dev else ""
        if re.search(r"\d$", dev):
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, f"invalid disk target '{dev}', partitions can't appear in disk targets")
    if is_q35(defn) and (  # found while adding the implicit IDE controller, before validation
        any(d.bus == "ide" for d in devs.disks) or any(c.type == "ide" for c in devs.controllers)
    ):
        raise Error(
            ErrorCode.CONFIG_UNSUPPORTED, "IDE controllers are unsupported for this QEMU binary or machine type"
        )
    _validate_os(defn)
    _validate_cpu_features(defn)
    validate_definition(defn, cfg)
    _validate_devices(defn)
    validate_graphics(defn, cfg)
    drives: dict[tuple[str, int, int, int, int], str] = {}
    for d in defn.devices.disks:
        a = d.address
        if a is None:
            continue
        if a.type == "drive":
            k = (d.bus, a.controller or 0, int(a.bus or 0), a.target or 0, a.unit or 0)
            if k in drives:
                raise DomError(
                    ErrorCode.CONFIG_UNSUPPORTED,
                    f"Found duplicate drive address for disk with target name '{drives[k]}' "
                    f"controller='{k[1]}' bus='{k[2]}' target='{k[3]}' unit='{k[4]}'",
                )
            drives[k] = d.target.dev if d.target and d.target.dev else ""
            continue
        elif d.bus in ("ide", "sata", "fdc", "scsi") and a.type not in ("drive",):
            raise DomError(
                ErrorCode.CONFIG_UNSUPPORTED,
                f"Invalid address type '{a.type}' for the disk '{d.target.dev if d.target else ''}' "
                f"with the bus type '{d.bus}'",
            )


__all__ = ["CapsLike", "apply_qemu_defaults", "generate_mac", "is_i440fx", "is_q35"]
