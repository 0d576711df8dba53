"""Pass-through and sharing devices: <hostdev>, <filesystem>, <redirdev>, <hub>."""

from __future__ import annotations

from dataclasses import dataclass

from virtstack.virt.xml.base import UINT, XMLModel, attr, cattr, child, enum, flag, hexfmt
from virtstack.virt.xml.devices.address import Address, Alias, BootOrder
from virtstack.virt.xml.devices.chardev import ChrSource
from virtstack.virt.xml.devices.interface import Rom


@dataclass
class HostAddress(XMLModel):
    """The host-side address of a passed-through device (PCI or USB)."""

    TAG = "address"
    domain: int | None = attr("domain", hexfmt(4))
    bus: str | None = attr("bus")
    slot: int | None = attr("slot", hexfmt(2))
    function: int | None = attr("function", hexfmt(1))
    device: str | None = attr("device")


@dataclass
class HostdevSource(XMLModel):
    TAG = "source"
    startup_policy: str | None = attr("startupPolicy", enum("mandatory", "requisite", "optional"))
    vendor: str | None = cattr("vendor", "id")
    product: str | None = cattr("product", "id")
    address: HostAddress | None = child("address", HostAddress)


@dataclass
class HostdevDriver(XMLModel):
    TAG = "driver"
    name: str | None = attr("name", enum("kvm", "vfio", "xen"))


@dataclass
class Hostdev(XMLModel):
    TAG = "hostdev"
    mode: str | None = attr("mode", enum("subsystem", "capabilities"))
    type: str | None = attr("type", enum("usb", "pci", "scsi", "scsi_host", "mdev"), required=True)
    managed: str | None = attr("managed", enum("yes", "no"))
    model: str | None = attr("model")
    display: str | None = attr("display", enum("on", "off"))
    driver: HostdevDriver | None = child("driver", HostdevDriver)
    source: HostdevSource | None = child("source", HostdevSource)
    readonly: bool = flag("readonly")
    shareable: bool = flag("shareable")
    boot: BootOrder | None = child("boot", BootOrder)
    alias: Alias | None = child("alias", Alias)
    rom: Rom | None = child("rom", Rom)
    address: Address | None = child("address", Address)

    def validate(self) -> None:
        if self.mode is None:
            self.mode = "subsystem"
        if self.mode == "subsystem" and self.type in ("usb", "pci") and self.managed is None:
            self.managed = "no"


@dataclass
class FSDriver(XMLModel):
    TAG = "driver"
    type: str | None = attr("type", enum("default", "path", "handle", "loop", "nbd", "ploop", "virtiofs"))
    format: str | None = attr("format")
    wrpolicy: str | None = attr("wrpolicy", enum("immediate"))
    queue: int | None = attr("queue", UINT)


@dataclass
class FSSource(XMLModel):
    TAG = "source"
    dir: str | None = attr("dir")
    file: str | None = attr("file")
    name: str | None = attr("name")
    socket: str | None = attr("socket")


@dataclass
class FSTarget(XMLModel):
    TAG = "target"
    dir: str | None = attr("dir")


@dataclass
class Filesystem(XMLModel):
    TAG = "filesystem"
    type: str | None = attr("type", enum("mount", "block", "file", "template", "ram", "bind", "volume"))
    accessmode: str | None = attr("accessmode", enum("passthrough", "mapped", "squash"))
    model: str | None = attr("model", enum("virtio", "virtio-transitional", "virtio-non-transitional"))
    multidevs: str | None = attr("multidevs", enum("default", "remap", "forbid", "warn"))
    fmode: str | None = attr("fmode")
    dmode: str | None = attr("dmode")
    driver: FSDriver | None = child("driver", FSDriver)
    source: FSSource | None = child("source", FSSource)
    target: FSTarget | None = child("target", FSTarget)
    readonly: bool = flag("readonly")
    alias: Alias | None = child("alias", Alias)
    address: Address | None = child("address", Address)

    def validate(self) -> None:
        if self.type is None:
            self.type = "mount"


@dataclass
class Redirdev(XMLModel):
    TAG = "redirdev"
    bus: str | None = attr("bus", enum("usb"))
    type: str | None = attr("type")
    source: ChrSource | None = child("source", ChrSource)
    protocol: str | None = cattr("protocol", "type")
    boot: BootOrder | None = child("boot", BootOrder)
    alias: Alias | None = child("alias", Alias)
    address: Address | None = child("address", Address)


    def validate(self) -> None:
        if self.type == "tcp" and self.protocol is None:
            self.protocol = "raw"


@dataclass
class Hub(XMLModel):
    TAG = "hub"
    type: str | None = attr("type", enum("usb"), required=True)
    alias: Alias | None = child("alias", Alias)
    address: Address | None = child("address", Address)
