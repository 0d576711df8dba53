"""Per-device checks libvirt's validation runs on a QEMU definition (domain_validate.c, qemu_validate.c).

libvirt validates a definition at define time and again before building a command line; a device it
cannot give QEMU is refused with its own wording instead of being dropped or changed. Devices are
visited in libvirt's iteration order (disks, NICs, videos, controllers, character devices, inputs,
then the devices without device info such as graphics), so that with several faults the first error
is the one libvirt reports. Only checks that need no host state live here.
"""

from __future__ import annotations

from typing import Any

from virtstack.virt.drivers.qemu.command.machine import iothread_ids
from virtstack.virt.drivers.qemu.config import QemuDriverConfig
from virtstack.virt.drivers.qemu.defaults import is_i440fx
from virtstack.virt.errors import ErrorCode, ErrorDomain, error_factory
from virtstack.virt.xml.domain import DomainDef

Error = error_factory(ErrorDomain.QEMU)
DomError = error_factory(ErrorDomain.DOMAIN)

#: USB controller models whose root hub has a settable number of ports
_USB_PORTS_MODELS = ("nec-xhci", "qemu-xhci")
#: video models that may be a secondary video device
_SECONDARY_VIDEO = ("qxl", "virtio")


def _unsupported(msg: str) -> Exception:
    return Error(ErrorCode.CONFIG_UNSUPPORTED, msg)


def validate_definition(defn: DomainDef, config: QemuDriverConfig) -> None:
    """Each device in libvirt's order (graphics: `validate_graphics`, after the remaining checks)."""
    if defn.on_reboot == "destroy" and defn.on_poweroff == "restart":  # (libvirt's own wording)
        raise _unsupported(
            "qemu driver doesn't support 'onReboot' set to 'destroy and 'onPoweroff' set to 'reboot'"
        )
    devs = defn.devices
    _duplicate_targets(devs.disks)
    for i, console in enumerate(devs.consoles):
        ttype = console.target.type if console.target is not None else None
        if i > 0 and ttype in (None, "serial"):
            raise _unsupported("Only the first console can be a serial port")
    threads = set(iothread_ids(defn))
    for disk in devs.disks:
        _disk(disk)
        tid = disk.driver.iothread if disk.driver is not None else None
        if tid is not None and tid not in threads:
            raise _unsupported(f"Disk iothread '{tid}' not defined in iothreadid")
    for iface in devs.interfaces:
        _interface(iface)
    for i, video in enumerate(devs.videos):
        _video(video, i, len(devs.videos))
    for ctl in devs.controllers:
        _controller(ctl)
        tid = ctl.driver.iothread if ctl.driver is not None else None
        if tid is not None and tid not in threads:
            raise _unsupported(f"controller iothread '{tid}' not defined in iothreadid")
    if is_i440fx(defn) and any(c.type == "ide" and (c.index or 0) > 0 for c in devs.controllers):
        # the PIIX3 has one IDE function; libvirt finds out while placing the controllers on PCI
        raise Error(ErrorCode.INTERNAL_ERROR, "Only 1 IDE controller is supported")
    for chrs in (devs.serials, devs.parallels, devs.channels, devs.consoles):
        for chr_dev in chrs:
            _chardev(chr_dev, is_channel=chrs is devs.channels)
    for inp in devs.inputs:
        if inp.bus == "ps2" and inp.type not in (None, "mouse", "keyboard"):
            raise Error(ErrorCode.INTERNAL_ERROR, f"ps2 bus does not support {inp.type} input device")


def validate_graphics(defn: DomainDef, config: QemuDriverConfig) -> None:
    """Graphics come last in libvirt's device walk (they carry no device info)."""
    for g in defn.devices.graphics:
        if g.type == "vnc" and g.autoport == "no" and g.socket is None and (g.port is None or not 5900 <= g.port <= 65535):
            listen = g.listens[0].type if g.listens else "address"
            if listen in ("address", "network"):
                raise _unsupported("vnc port must be in range [5900,65535]")
        if g.type == "spice" and g.tls_port is not None and g.tls_port > 0 and not config.spice_tls:
            raise _unsupported("spice TLS port set in XML configuration, but TLS is disabled in qemu.conf")


def _disk_source(disk: Any) -> str:
    src = disk.source
    for attr in ("file", "dev", "dir", "name", "volume"):
        value = getattr(src, attr, None) if src is not None else None
        if value:
            return str(value)
    return "<null>"


def _duplicate_targets(disks: list[Any]) -> None:
    """Two disks may not claim one target name (virDomainDefCheckDuplicateDiskInfo)."""
    seen: dict[str, Any] = {}
    for disk in disks:
        dev = disk.target.dev if disk.target is not None else None
        if not dev:
            continue
        if dev in seen:
            raise DomError(
                ErrorCode.XML_ERROR,
                f"target '{dev}' duplicated for disk sources '{_disk_source(seen[dev])}' and '{_disk_source(disk)}'",
            )
        seen[dev] = disk


def _virtio_options_absent(driver: Any) -> None:
    """virDomainCheckVirtioOptionsAreAbsent: iommu/ats/packed belong to virtio devices only."""
    if driver is None:
        return
    for opt in ("iommu", "ats", "packed"):
        if getattr(driver, opt, None) is not None:
            raise _unsupported(f"{opt} driver option is only supported for virtio devices")


def _acpi_index(dev: Any) -> None:
    acpi = getattr(dev, "acpi", None)
    addr = getattr(dev, "address", None)
    if acpi is not None and acpi.index is not None and addr is not None and addr.type != "pci":
        raise _unsupported("ACPI index is only supported for PCI devices")


def _disk(disk: Any) -> None:
    bus = disk.target.bus if disk.target is not None else None
    drv = disk.driver
    if drv is not None and drv.io == "native" and drv.cache not in (None, "default", "none", "directsync"):
        raise _unsupported("io='native' needs either no disk cache or directsync cache mode")
    if bus != "virtio" and drv is not None:
        if drv.event_idx is not None:
            raise _unsupported("disk event_idx mode supported only for virtio bus")
        if drv.ioeventfd is not None:
            raise _unsupported("disk ioeventfd mode supported only for virtio bus")
    if disk.target is not None and disk.target.rotation_rate is not None and bus not in ("scsi", "ide", "sata"):
        raise Error(ErrorCode.INTERNAL_ERROR, "rotation rate is only valid for SCSI/IDE/SATA bus")
    _acpi_index(disk)
    if bus != "virtio":
        _virtio_options_absent(drv)


def _interface(iface: Any) -> None:
    model = iface.model or ""
    if iface.type == "vhostuser" and not model.startswith("virtio"):
        raise Error(
            ErrorCode.INTERNAL_ERROR,
            "Wrong or no <model> 'type' attribute specified with <interface type='vhostuser'/>. "
            "vhostuser requires the virtio-net* frontend",
        )
    if model and not model.startswith("virtio"):
        _virtio_options_absent(iface.driver)


def _video(video: Any, index: int, total: int) -> None:
    m = video.model
    vtype = m.type if m is not None else None
    if vtype is None:
        return
    if vtype == "none":
        if total > 1:
            raise _unsupported("a 'none' video type must be the only video device defined for the domain")
        return
    if video.driver is not None and video.driver.name == "vhostuser" and vtype != "virtio":
        raise _unsupported("'vhostuser' driver is only supported with 'virtio' device")
    if vtype != "qxl":
        if m.ram is not None:
            raise _unsupported("ram attribute only supported for video type qxl")
        if m.vram64 is not None:
            raise _unsupported("vram64 attribute only supported for video type qxl")
    if index > 0 and vtype not in _SECONDARY_VIDEO:
        raise _unsupported(f"video type '{vtype}' is only valid as primary video device")
    if vtype != "virtio":
        _virtio_options_absent(video.driver)


def _controller(ctl: Any) -> None:
    if ctl.type == "usb" and ctl.ports is not None and ctl.model not in _USB_PORTS_MODELS and ctl.model != "none":
        raise _unsupported(f"usb controller type '{ctl.model}' doesn't support 'ports' with this QEMU binary")
    if ctl.type == "usb" and ctl.model in _USB_PORTS_MODELS and (ctl.ports or 0) > 15:
        raise _unsupported(f"'{ctl.model}' controller only supports up to '15' ports")


def _chardev(dev: Any, *, is_channel: bool) -> None:
    """virDomainChrSourceDefValidate: each host side names what it connects to."""
    ctype = dev.type
    src = dev.sources[0] if dev.sources else None
    if ctype in ("file", "dev", "pipe") and (src is None or not src.path):
        raise Error(ErrorCode.INTERNAL_ERROR, "Missing source path attribute for char device")
    if ctype == "tcp":
        if src is None or not src.host:
            raise Error(ErrorCode.INTERNAL_ERROR, "Missing source host attribute for char device")
        if not src.service:
            raise Error(ErrorCode.INTERNAL_ERROR, "Missing source service attribute for char device")
    if ctype == "unix" and (src is None or not src.path):
        target_virtio = dev.target is not None and dev.target.type == "virtio"
        if not (is_channel and target_virtio):
            raise Error(ErrorCode.INTERNAL_ERROR, "Missing source path attribute for char device")
