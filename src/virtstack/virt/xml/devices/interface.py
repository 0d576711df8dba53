"""<interface>: guest NICs of every type, with MAC, model, driver, ROM and addressing."""

from __future__ import annotations

import re
from dataclasses import dataclass

from virtstack.virt.errors import ErrorCode
from virtstack.virt.xml.base import ONOFF, UINT, Conv, Error, XMLModel, attr, cattr, child, enum, hexfmt
from virtstack.virt.xml.devices.address import ACPI, Address, Alias, BootOrder

IFACE_TYPES = (
    "user", "ethernet", "vhostuser", "server", "client", "mcast", "network", "bridge", "internal", "direct",
    "hostdev", "udp", "vdpa", "null", "vds",
)

_MAC_RE = re.compile(r"^([0-9a-fA-F]{1,2}:){5}[0-9a-fA-F]{1,2}$")


def _parse_mac(s: str) -> str:
    if not _MAC_RE.match(s):
        raise Error(ErrorCode.XML_ERROR, f"unable to parse mac address '{s}'")
    mac = ":".join(f"{int(p, 16):02x}" for p in s.split(":"))
    if int(mac[:2], 16) & 1:
        raise Error(ErrorCode.XML_ERROR, f"expected unicast mac address, found multicast '{s}'")
    return mac


MAC = Conv(_parse_mac, str)


@dataclass
class Mac(XMLModel):
    TAG = "mac"
    address: str | None = attr("address", MAC)
    type: str | None = attr("type", enum("generated", "static"))
    check: bool | None = attr("check", enum("yes", "no"))


@dataclass
class IfaceHostAddress(XMLModel):
    """The host PCI address of an <interface type='hostdev'> source."""

    TAG = "address"
    type: str | None = attr("type", enum("pci", "usb"))
    domain: int | None = attr("domain", hexfmt(4))
    bus: int | None = attr("bus", hexfmt(2))
    slot: int | None = attr("slot", hexfmt(2))
    function: int | None = attr("function", hexfmt(1))


@dataclass
class IfaceSource(XMLModel):
    """<source> of an interface: network/bridge/dev/socket attributes depending on the type."""

    TAG = "source"
    network: str | None = attr("network")
    portgroup: str | None = attr("portgroup")
    bridge: str | None = attr("bridge")
    dev: str | None = attr("dev")
    type: str | None = attr("type", enum("unix"))
    path: str | None = attr("path")
    mode: str | None = attr("mode")
    address: str | None = attr("address")
    port: int | None = attr("port", UINT)
    host_address: IfaceHostAddress | None = child("address", IfaceHostAddress)


@dataclass
class IfaceDriver(XMLModel):
    TAG = "driver"
    name: str | None = attr("name", enum("qemu", "vhost", "kvm", "vfio", "xen"))
    txmode: str | None = attr("txmode", enum("iothread", "timer"))
    ioeventfd: bool | None = attr("ioeventfd", ONOFF)
    event_idx: bool | None = attr("event_idx", ONOFF)
    queues: int | None = attr("queues", UINT)
    rx_queue_size: int | None = attr("rx_queue_size", UINT)
    tx_queue_size: int | None = attr("tx_queue_size", UINT)
    iommu: bool | None = attr("iommu", ONOFF)
    ats: bool | None = attr("ats", ONOFF)
    packed: bool | None = attr("packed", ONOFF)
    page_per_vq: bool | None = attr("page_per_vq", ONOFF)


@dataclass
class Rom(XMLModel):
    TAG = "rom"
    bar: bool | None = attr("bar", ONOFF)
    file: str | None = attr("file")
    enabled: bool | None = attr("enabled", enum("yes", "no"))


@dataclass
class IfaceTarget(XMLModel):
    TAG = "target"
    dev: str | None = attr("dev")
    managed: str | None = attr("managed", enum("yes", "no"))


@dataclass
class Link(XMLModel):
    TAG = "link"
    state: str | None = attr("state", enum("up", "down"))


@dataclass
class MTU(XMLModel):
    TAG = "mtu"
    size: int | None = attr("size", UINT)


@dataclass
class Interface(XMLModel):
    """libvirt order: mac, source, target, model, driver, link, mtu, then device info (boot, alias, rom, acpi,
    address)."""

    TAG = "interface"
    type: str | None = attr("type", enum(*IFACE_TYPES), required=True)
    managed: str | None = attr("managed", enum("yes", "no"))
    trust_guest_rx_filters: str | None = attr("trustGuestRxFilters", enum("yes", "no"))
    mac: Mac | None = child("mac", Mac)
    source: IfaceSource | None = child("source", IfaceSource)
    target: IfaceTarget | None = child("target", IfaceTarget)
    model: str | None = cattr("model", "type")
    driver: IfaceDriver | None = child("driver", IfaceDriver)
    link: Link | None = child("link", Link)
    mtu: MTU | None = child("mtu", MTU)
    boot: BootOrder | None = child("boot", BootOrder)
    alias: Alias | None = child("alias", Alias)
    rom: Rom | None = child("rom", Rom)
    acpi: ACPI | None = child("acpi", ACPI)
    address: Address | None = child("address", Address)
