"""Controllers: the PCI topology (bridges, root ports), USB, SCSI, SATA and virtio-serial hosts."""

from __future__ import annotations

from typing import Any

from virtstack.virt.drivers.qemu.command.aliases import alias_of, controller_alias
from virtstack.virt.drivers.qemu.command.context import BuildContext, unsupported
from virtstack.virt.xml.devices.address import Address
from virtstack.virt.xml.devices.controller import Controller

_USB_DRIVERS = {
    "piix3-uhci": "piix3-usb-uhci",
    "piix4-uhci": "piix4-usb-uhci",
    "ehci": "usb-ehci",
    "ich9-ehci1": "ich9-usb-ehci1",
    "ich9-uhci1": "ich9-usb-uhci1",
    "ich9-uhci2": "ich9-usb-uhci2",
    "ich9-uhci3": "ich9-usb-uhci3",
    "vt82c686b-uhci": "vt82c686b-usb-uhci",
    "pci-ohci": "pci-ohci",
    "nec-xhci": "nec-usb-xhci",
    "qemu-xhci": "qemu-xhci",
}
_COMPANION_PORT = {"ich9-uhci1": 0, "ich9-uhci2": 2, "ich9-uhci3": 4}
_SCSI_DRIVERS = {
    "virtio-scsi": "virtio-scsi-pci",
    "virtio-transitional": "virtio-scsi-pci-transitional",
    "virtio-non-transitional": "virtio-scsi-pci-non-transitional",
    "lsilogic": "lsi",
    "lsisas1068": "mptsas1068",
    "lsisas1078": "megasas",
    "vmpvscsi": "pvscsi",
    "am53c974": "am53c974",
    "dc390": "dc390",
}
_ORDER = ("pci", "usb", "scsi", "ide", "sata", "fdc", "virtio-serial", "ccid")


def index_pci_buses(ctx: BuildContext) -> None:
    """Bus number -> the alias of its PCI controller, which devices name as their "bus".

    A root bus is part of the machine and never on the command line, so QEMU knows it only by its
    built-in name even when the XML gives it a user alias.
    """
    for ctl in ctx.defn.devices.controllers:
        if ctl.type == "pci":
            alias = alias_of(ctl)
            if alias.startswith("ua-") and ctl.model in ("pci-root", "pcie-root"):
                alias = "pcie.0" if ctl.model == "pcie-root" else "pci.0"
            ctx.pci_bus_alias.setdefault(ctl.index or 0, alias)
    ctx.pci_bus_alias.setdefault(0, "pcie.0" if ctx.is_q35 else "pci.0")


def build_pci_hole64(ctx: BuildContext) -> None:
    """<pcihole64> on the root controller becomes a global of the host bridge."""
    for ctl in ctx.defn.devices.controllers:
        if ctl.type == "pci" and ctl.model in ("pci-root", "pcie-root") and ctl.pcihole64 is not None:
            host = "q35-pcihost" if ctl.model == "pcie-root" else "i440FX-pcihost"
            ctx.add("-global", f"{host}.pci-hole64-size={ctl.pcihole64.size or 0}K")


def build_controllers(ctx: BuildContext) -> None:
    ctls = ctx.defn.devices.controllers
    for kind in _ORDER:
        group = [c for c in ctls if c.type == kind]
        for ctl in group:
            props = _controller_props(ctx, ctl)
            if props is not None:
                ctx.device(props)


def _controller_props(ctx: BuildContext, ctl: Controller) -> dict[str, Any] | None:
    alias = alias_of(ctl)
    if ctl.type == "pci":
        return _pci_props(ctx, ctl, alias)
    if ctl.type == "usb":
        return _usb_props(ctx, ctl, alias)
    if ctl.type == "scsi":
        model = ctl.model or "lsilogic"
        driver = _SCSI_DRIVERS.get(model)
        if driver is None:
            raise unsupported(f"Unsupported controller model: {model}")
        props: dict[str, Any] = {"driver": driver}
        if driver.startswith("virtio"):
            props.update(ctx.virtio_options(ctl.driver))
        if ctl.driver is not None:
            if ctl.driver.iothread is not None:
                props["iothread"] = f"iothread{ctl.driver.iothread}"
            if ctl.driver.queues is not None:
                props["num_queues"] = ctl.driver.queues
            if ctl.driver.cmd_per_lun is not None:
                props["cmd_per_lun"] = ctl.driver.cmd_per_lun
            if ctl.driver.max_sectors is not None:
                props["max_sectors"] = ctl.driver.max_sectors
            if ctl.driver.ioeventfd is not None:
                props["ioeventfd"] = ctl.driver.ioeventfd
        props["id"] = alias
        props.update(ctx.pci_props(ctl.address))
        return props
    if ctl.type == "ide":
        if ctx.is_i440fx and (ctl.index or 0) == 0:
            return None  # the PIIX3 IDE function is part of the machine
        raise unsupported("Only a single IDE controller is supported for this machine type")
    if ctl.type == "sata":
        if ctx.is_q35 and (ctl.index or 0) == 0:
            return None  # the ICH9 AHCI function is part of the machine
        return {"driver": "ahci", "id": alias, **ctx.pci_props(ctl.address)}
    if ctl.type == "fdc":
        return None
    if ctl.type == "virtio-serial":
        driver = {
            "virtio-transitional": "virtio-serial-pci-transitional",
            "virtio-non-transitional": "virtio-serial-pci-non-transitional",
        }.get(ctl.model or "", "virtio-serial-pci")
        props = {"driver": driver, **ctx.virtio_options(ctl.driver), "id": alias}
        if ctl.ports is not None:
            props["max_ports"] = ctl.ports
        if ctl.vectors is not None:
            props["vectors"] = ctl.vectors
        props.update(ctx.pci_props(ctl.address))
        return props
    raise unsupported(f"Unsupported controller type: {ctl.type}")


def _usb_props(ctx: BuildContext, ctl: Controller, alias: str) -> dict[str, Any] | None:
    model = ctl.model
    if model == "none":
        return None
    if model is None:
        model = "qemu-xhci" if ctx.is_q35 else "piix3-uhci"
    driver = _USB_DRIVERS.get(model)
    if driver is None:
        raise unsupported(f"USB controller model '{model}' is not supported by this QEMU binary")
    props: dict[str, Any] = {"driver": driver}
    if model in _COMPANION_PORT:
        master = (
            ctl.master.startport
            if ctl.master and ctl.master.startport is not None
            else _COMPANION_PORT[model]
        )
        props["masterbus"] = f"{_usb_master_alias(ctx, ctl, alias)}.0"
        props["firstport"] = master
    else:
        if model in ("qemu-xhci", "nec-xhci") and ctl.ports is not None:
            props["p2"] = ctl.ports
            props["p3"] = ctl.ports
        props["id"] = alias
    props.update(ctx.pci_props(ctl.address))
    return props


def _usb_master_alias(ctx: BuildContext, companion: Controller, default: str) -> str:
    """qemuBuildUSBControllerFindMasterAlias: the non-companion USB controller of the same index."""
    for ctl in ctx.defn.devices.controllers:
        companion_model = ctl.model in _COMPANION_PORT
        if ctl.type == "usb" and ctl.index == companion.index and ctl.master is None and not companion_model:
            return alias_of(ctl)
    return default


def _pci_props(ctx: BuildContext, ctl: Controller, alias: str) -> dict[str, Any] | None:
    model = ctl.model
    if model in ("pci-root", "pcie-root", None):
        return None
    name = ctl.model_name.name if ctl.model_name and ctl.model_name.name else None
    tgt = ctl.target
    props: dict[str, Any]
    if model == "pci-bridge":
        props = {
            "driver": name or "pci-bridge",
            "chassis_nr": tgt.chassis_nr if tgt and tgt.chassis_nr else ctl.index,
        }
    elif model == "dmi-to-pci-bridge":
        props = {"driver": name or "i82801b11-bridge"}
    elif model in ("pcie-root-port", "pcie-switch-downstream-port"):
        default = "pcie-root-port" if model == "pcie-root-port" else "xio3130-downstream"
        props = {"driver": name or default}
        if tgt is not None and tgt.port is not None:
            props["port"] = tgt.port
        props["chassis"] = tgt.chassis if tgt and tgt.chassis is not None else ctl.index
        if tgt is not None and tgt.hotplug is False:
            props["hotplug"] = False
    elif model == "pcie-switch-upstream-port":
        props = {"driver": name or "x3130-upstream"}
    elif model == "pcie-to-pci-bridge":
        props = {"driver": name or "pcie-pci-bridge"}
    elif model in ("pci-expander-bus", "pcie-expander-bus"):
        props = {"driver": name or ("pxb" if model == "pci-expander-bus" else "pxb-pcie")}
        props["bus_nr"] = tgt.bus_nr if tgt and tgt.bus_nr is not None else 0
        if tgt is not None and tgt.node is not None:
            props["numa_node"] = tgt.node
    else:
        raise unsupported(f"Unknown PCI controller model '{model}'")
    props["id"] = alias
    props.update(ctx.pci_props(ctl.address))
    return props


def usb_address_props(ctx: BuildContext, addr: Address | None) -> dict[str, Any]:
    """ "bus"/"port" of a USB address: the alias of the controller for that bus (qemuBuildDeviceAddressProps)."""
    if addr is None or addr.type != "usb":
        return {}
    props: dict[str, Any] = {"bus": f"{controller_alias(ctx, 'usb', int(addr.bus or 0))}.0"}
    if addr.port:
        props["port"] = addr.port
    return props
