"""Device <address>: PCI, drive, virtio-serial, USB, ISA, CCID ... and the shared <alias>/<boot>/<acpi> bits."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from virtstack.virt.errors import ErrorCode, VirtError
from virtstack.virt.xml.base import ONOFF, STR, UINT, Conv, Ctx, Error, XMLModel, attr, enum, hexfmt

ADDRESS_TYPES = (
    "pci", "drive", "virtio-serial", "ccid", "usb", "spapr-vio", "ccw", "virtio-mmio", "isa", "dimm",
    "unassigned",
)

HEX2 = hexfmt(2)


def _hex_iobase(v: int) -> str:
    return f"0x{v:x}"


IOBASE = Conv(lambda s: int(s, 0), _hex_iobase, " Expected non-negative value")
NUM = Conv(lambda s: int(s, 0), str, " Expected non-negative value")  # decimal or 0x-hex; PCI slots re-hexed


@dataclass
class Address(XMLModel):
    """One model for every address type; which attributes apply is checked after parsing."""

    TAG = "address"
    type: str | None = attr("type", enum(*ADDRESS_TYPES))
    domain: int | None = attr("domain", hexfmt(4))
    controller: int | None = attr("controller", UINT)
    bus: int | None = attr("bus", STR)
    target: int | None = attr("target", UINT)
    slot: int | None = attr("slot", NUM)
    function: int | None = attr("function", hexfmt(1))
    multifunction: bool | None = attr("multifunction", ONOFF)
    unit: int | None = attr("unit", UINT)
    port: str | None = attr("port", STR)
    iobase: int | None = attr("iobase", IOBASE)
    irq: int | None = attr("irq", IOBASE)
    base: int | None = attr("base", IOBASE)

    def validate(self) -> None:
        if self.type is None:
            raise Error(ErrorCode.INTERNAL_ERROR, "No type specified for device address")
        bus = self.bus
        if bus is not None:
            try:
                self.bus = int(str(bus), 0) if self.type == "pci" else int(str(bus))
            except ValueError:
                raise Error(ErrorCode.INTERNAL_ERROR, "Cannot parse <address> 'bus' attribute") from None
        if self.type == "pci":
            self.domain = self.domain or 0
            self.bus = self.bus or 0
            self.slot = self.slot or 0
            self.function = self.function or 0
            if self.slot > 31:
                raise VirtError(ErrorCode.XML_ERROR, f"Invalid PCI address slot='0x{self.slot:x}', must be <= 0x1F")
            if self.function > 7:
                raise VirtError(ErrorCode.XML_ERROR, f"Invalid PCI address function=0x{self.function:x}, must be <= 7")
        elif self.type == "drive":
            for n in ("controller", "bus", "target", "unit"):
                if getattr(self, n) is None:
                    setattr(self, n, 0)
        elif self.type == "virtio-serial":
            for n in ("controller", "bus"):
                if getattr(self, n) is None:
                    setattr(self, n, 0)

    def to_element(self, ctx: Ctx, tag: str | None = None) -> etree._Element | None:
        el = super().to_element(ctx, tag)
        if el is not None and self.type == "pci" and self.bus is not None:
            el.set("bus", f"0x{int(self.bus):02x}")
        if el is not None and self.type == "pci" and self.slot is not None:
            el.set("slot", f"0x{self.slot:02x}")
        return el

    @classmethod
    def pci(cls, bus: int, slot: int, function: int = 0, multifunction: bool | None = None) -> Address:
        return cls(type="pci", domain=0, bus=bus, slot=slot, function=function, multifunction=multifunction)

    @classmethod
    def drive(cls, controller: int, bus: int, target: int, unit: int) -> Address:
        return cls(type="drive", controller=controller, bus=bus, target=target, unit=unit)


@dataclass
class VirtioDriver(XMLModel):
    """<driver> carrying only the virtio transport options (input, memballoon, rng, ...)."""

    TAG = "driver"
    iommu: bool | None = attr("iommu", ONOFF)
    ats: bool | None = attr("ats", ONOFF)
    packed: bool | None = attr("packed", ONOFF)
    page_per_vq: bool | None = attr("page_per_vq", ONOFF)


@dataclass
class Alias(XMLModel):
    """<alias name>: runtime state, except user aliases ('ua-' prefix) which belong to the config."""

    TAG = "alias"
    name: str | None = attr("name")

    def to_element(self, ctx: Ctx, tag: str | None = None) -> etree._Element | None:
        if ctx.inactive and not (self.name or "").startswith("ua-"):
            return None
        return super().to_element(ctx, tag)


@dataclass
class BootOrder(XMLModel):
    """Per-device <boot order='N'/>."""

    TAG = "boot"
    order: int | None = attr("order", UINT, required=True)
    loadparm: str | None = attr("loadparm")


@dataclass
class ACPI(XMLModel):
    TAG = "acpi"
    index: int | None = attr("index", UINT)
