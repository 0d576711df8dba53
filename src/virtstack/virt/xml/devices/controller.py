"""<controller>: USB, IDE, SATA, SCSI, virtio-serial, PCI topology (roots, bridges, root ports)."""

from __future__ import annotations

from dataclasses import dataclass

from virtstack.virt.errors import ErrorCode
from virtstack.virt.xml.base import (
    INT,
    ONOFF,
    UINT,
    Error,
    XMLError,
    XMLModel,
    attr,
    child,
    ctext,
    enum,
    hexfmt,
    invalid_attr,
    scale_to_kib,
    text,
)
from virtstack.virt.xml.devices.address import Address, Alias

CONTROLLER_TYPES = ("ide", "fdc", "scsi", "sata", "virtio-serial", "ccid", "usb", "pci", "xenbus", "isa")
PCI_MODELS = (
    "pci-root", "pcie-root", "pci-bridge", "dmi-to-pci-bridge", "pcie-root-port", "pcie-switch-upstream-port",
    "pcie-switch-downstream-port", "pci-expander-bus", "pcie-expander-bus", "pcie-to-pci-bridge",
)
USB_MODELS = (
    "piix3-uhci", "piix4-uhci", "ehci", "ich9-ehci1", "ich9-uhci1", "ich9-uhci2", "ich9-uhci3", "vt82c686b-uhci",
    "pci-ohci", "nec-xhci", "qusb1", "qusb2", "qemu-xhci", "none",
)
SCSI_MODELS = (
    "auto", "buslogic", "lsilogic", "lsisas1068", "vmpvscsi", "ibmvscsi", "virtio-scsi", "lsisas1078",
    "virtio-transitional", "virtio-non-transitional", "ncr53c90", "am53c974", "dc390",
)
MODELS = {
    "pci": PCI_MODELS,
    "usb": USB_MODELS,
    "scsi": SCSI_MODELS,
    "virtio-serial": ("virtio", "virtio-transitional", "virtio-non-transitional"),
    "ide": ("piix3", "piix4", "ich6"),
}
# pci model -> QEMU device model name libvirt writes in <model name=...>
PCI_MODEL_NAMES = {
    "pci-bridge": "pci-bridge",
    "dmi-to-pci-bridge": "i82801b11-bridge",
    "pcie-root-port": "pcie-root-port",
    "pcie-switch-upstream-port": "x3130-upstream",
    "pcie-switch-downstream-port": "xio3130-downstream",
    "pci-expander-bus": "pxb",
    "pcie-expander-bus": "pxb-pcie",
    "pcie-to-pci-bridge": "pcie-pci-bridge",
}


@dataclass
class ControllerModel(XMLModel):
    TAG = "model"
    name: str | None = attr("name")


@dataclass
class ControllerTarget(XMLModel):
    TAG = "target"
    chassis_nr: int | None = attr("chassisNr", UINT)
    chassis: int | None = attr("chassis", UINT)
    port: int | None = attr("port", hexfmt(1))
    bus_nr: int | None = attr("busNr", UINT)
    hotplug: bool | None = attr("hotplug", ONOFF)
    index: int | None = attr("index", UINT)
    node: int | None = ctext("node", UINT)


@dataclass
class Master(XMLModel):
    TAG = "master"
    startport: int | None = attr("startport", UINT)


@dataclass
class Driver(XMLModel):
    TAG = "driver"
    queues: int | None = attr("queues", UINT)
    cmd_per_lun: int | None = attr("cmd_per_lun", UINT)
    max_sectors: int | None = attr("max_sectors", UINT)
    ioeventfd: bool | None = attr("ioeventfd", ONOFF)
    iothread: int | None = attr("iothread", UINT)
    iommu: bool | None = attr("iommu", ONOFF)
    ats: bool | None = attr("ats", ONOFF)
    packed: bool | None = attr("packed", ONOFF)
    page_per_vq: bool | None = attr("page_per_vq", ONOFF)


@dataclass
class PCIHole64(XMLModel):
    TAG = "pcihole64"
    unit: str | None = attr("unit")
    size: int | None = text(INT)

    def validate(self) -> None:
        self.size = scale_to_kib(str(self.size or 0), self.unit, "./pcihole64[1]")
        self.unit = "KiB"


@dataclass
class Controller(XMLModel):
    """libvirt order: model attr..., then driver, master, model, target, pcihole64, alias, address."""

    TAG = "controller"
    type: str | None = attr("type", enum(*CONTROLLER_TYPES), required=True)
    index: int | None = attr("index", INT)
    model: str | None = attr("model")
    ports: int | None = attr("ports", UINT)
    vectors: int | None = attr("vectors", UINT)
    max_grant_frames: int | None = attr("maxGrantFrames", UINT)
    driver: Driver | None = child("driver", Driver)
    master: Master | None = child("master", Master)
    model_name: ControllerModel | None = child("model", ControllerModel)
    target: ControllerTarget | None = child("target", ControllerTarget)
    pcihole64: PCIHole64 | None = child("pcihole64", PCIHole64)
    alias: Alias | None = child("alias", Alias)
    address: Address | None = child("address", Address)

    def validate(self) -> None:
        if self.index is not None and self.index < 0:
            raise invalid_attr("index", "controller", str(self.index), " Expected non-negative value")
        if self.model is not None:
            allowed = MODELS.get(self.type or "")
            if allowed is not None and self.model not in allowed:
                raise Error(ErrorCode.CONFIG_UNSUPPORTED, f"Unknown model type '{self.model}'")
        if self.type == "pci" and self.model in ("pci-root", "pcie-root"):
            if self.index not in (None, 0):
                raise XMLError(ErrorCode.XML_ERROR, "pci-root and pcie-root controllers should have index 0")
            if self.address is not None:
                raise Error(
                    ErrorCode.CONFIG_UNSUPPORTED, "pci-root and pcie-root controllers should not have an address"
                )


