"""Small devices: <input>, <rng>, <memballoon>, <audio>, <watchdog>, <panic>."""
# ruff: noqa: RUF009 - attr()/child()/... are dataclasses.field() wrappers declaring the XML mapping

from __future__ import annotations

from dataclasses import dataclass

from virtstack.virt.xml.base import (
    INT,
    ONOFF,
    UINT,
    XMLModel,
    attr,
    cattr,
    child,
    children,
    ctext,
    ctexts,
    enum,
    scaled,
    text,
)
from virtstack.virt.xml.devices.address import Address, Alias, VirtioDriver
from virtstack.virt.xml.devices.chardev import ChrSource


@dataclass
class Input(XMLModel):
    TAG = "input"
    type: str | None = attr(
        "type",
        enum("mouse", "tablet", "keyboard", "passthrough", "evdev", error="unknown input device type '{}'"),
        required=True,
    )
    bus: str | None = attr("bus", enum("ps2", "usb", "xen", "virtio", "none"))
    model: str | None = attr("model", enum("virtio", "virtio-transitional", "virtio-non-transitional"))
    source: str | None = cattr("source", "evdev")
    driver: VirtioDriver | None = child("driver", VirtioDriver)
    alias: Alias | None = child("alias", Alias)
    address: Address | None = child("address", Address)


@dataclass
class RNGRate(XMLModel):
    TAG = "rate"
    bytes: int | None = attr("bytes", UINT)
    period: int | None = attr("period", UINT)


@dataclass
class RNGBackend(XMLModel):
    TAG = "backend"
    model: str | None = attr("model", enum("random", "egd", "builtin"), required=True)
    type: str | None = attr("type")
    sources: list[ChrSource] = children("source", ChrSource)
    protocol: str | None = cattr("protocol", "type")
    path: str | None = text()

    def validate(self) -> None:
        if self.type != "tcp":
            self.protocol = None  # libvirt keeps <protocol> only for TCP sources


@dataclass
class RNG(XMLModel):
    TAG = "rng"
    model: str | None = attr("model", enum("virtio", "virtio-transitional", "virtio-non-transitional"), required=True)
    rate: RNGRate | None = child("rate", RNGRate)
    backend: RNGBackend | None = child("backend", RNGBackend)
    driver: VirtioDriver | None = child("driver", VirtioDriver)
    alias: Alias | None = child("alias", Alias)
    address: Address | None = child("address", Address)


@dataclass
class Stats(XMLModel):
    TAG = "stats"
    period: int | None = attr("period", INT)


@dataclass
class MemBalloon(XMLModel):
    TAG = "memballoon"
    model: str | None = attr(
        "model", enum("virtio", "xen", "none", "virtio-transitional", "virtio-non-transitional"), required=True
    )
    autodeflate: bool | None = attr("autodeflate", ONOFF)
    free_page_reporting: bool | None = attr("freePageReporting", ONOFF)
    alias: Alias | None = child("alias", Alias)
    stats: Stats | None = child("stats", Stats)
    address: Address | None = child("address", Address)
    driver: VirtioDriver | None = child("driver", VirtioDriver)


@dataclass
class Audio(XMLModel):
    TAG = "audio"
    id: int | None = attr("id", UINT)
    type: str | None = attr(
        "type",
        enum("none", "alsa", "coreaudio", "jack", "oss", "pulseaudio", "sdl", "spice", "file", "dbus"),
        required=True,
    )


@dataclass
class Watchdog(XMLModel):
    TAG = "watchdog"
    model: str | None = attr("model", enum("i6300esb", "ib700", "diag288", "itco"), required=True)
    action: str | None = attr("action", enum("reset", "shutdown", "poweroff", "pause", "dump", "none", "inject-nmi"))
    alias: Alias | None = child("alias", Alias)
    address: Address | None = child("address", Address)


@dataclass
class Panic(XMLModel):
    TAG = "panic"
    model: str | None = attr("model", enum("isa", "pseries", "hyperv", "s390", "pvpanic"))
    alias: Alias | None = child("alias", Alias)
    address: Address | None = child("address", Address)


@dataclass
class Codec(XMLModel):
    TAG = "codec"
    type: str | None = attr("type", enum("duplex", "micro", "output"), required=True)


@dataclass
class Sound(XMLModel):
    TAG = "sound"
    model: str | None = attr(
        "model",
        enum("sb16", "es1370", "pcspk", "ac97", "ich6", "ich9", "usb", "ich7", error="unknown sound model '{}'"),
        required=True,
    )
    codecs: list[Codec] = children("codec", Codec)
    audio: int | None = cattr("audio", "id", UINT)
    alias: Alias | None = child("alias", Alias)
    address: Address | None = child("address", Address)


@dataclass
class TPMBackend(XMLModel):
    TAG = "backend"
    type: str | None = attr("type", enum("passthrough", "emulator", "external"), required=True)
    version: str | None = attr("version", enum("1.2", "2.0"))
    persistent_state: str | None = attr("persistent_state", enum("yes", "no"))
    device: str | None = cattr("device", "path")


@dataclass
class TPM(XMLModel):
    TAG = "tpm"
    model: str | None = attr("model", enum("tpm-tis", "tpm-crb", "tpm-spapr", "spapr-tpm-proxy"))
    backend: TPMBackend | None = child("backend", TPMBackend)
    alias: Alias | None = child("alias", Alias)
    address: Address | None = child("address", Address)


@dataclass
class CID(XMLModel):
    TAG = "cid"
    auto: str | None = attr("auto", enum("yes", "no"))
    address: int | None = attr("address", UINT)


@dataclass
class VSock(XMLModel):
    TAG = "vsock"
    model: str | None = attr("model", enum("virtio", "virtio-transitional", "virtio-non-transitional"))
    cid: CID | None = child("cid", CID)
    alias: Alias | None = child("alias", Alias)
    address: Address | None = child("address", Address)


@dataclass
class ShmemModel(XMLModel):
    TAG = "model"
    type: str | None = attr("type", enum("ivshmem", "ivshmem-plain", "ivshmem-doorbell"))


@dataclass
class ShmemServer(XMLModel):
    TAG = "server"
    path: str | None = attr("path")


@dataclass
class ShmemMsi(XMLModel):
    TAG = "msi"
    vectors: int | None = attr("vectors", UINT)
    ioeventfd: str | None = attr("ioeventfd", enum("on", "off"))
    enabled: str | None = attr("enabled", enum("yes", "no"))


@dataclass
class ShmemSize(XMLModel):
    """Kept as written: libvirt echoes the unit it was given (M by default)."""

    TAG = "size"
    unit: str | None = attr("unit")
    value: int | None = text(UINT)


@dataclass
class Shmem(XMLModel):
    TAG = "shmem"
    name: str | None = attr("name", required=True)
    role: str | None = attr("role", enum("master", "peer"))
    model: ShmemModel | None = child("model", ShmemModel)
    size: ShmemSize | None = child("size", ShmemSize)
    server: ShmemServer | None = child("server", ShmemServer)
    msi: ShmemMsi | None = child("msi", ShmemMsi)
    alias: Alias | None = child("alias", Alias)
    address: Address | None = child("address", Address)


@dataclass
class MemoryTarget(XMLModel):
    TAG = "target"
    size_kib: int | None = scaled("size")
    node: int | None = ctext("node", UINT)
    requested_kib: int | None = scaled("requested")
    block_kib: int | None = scaled("block")


@dataclass
class MemorySource(XMLModel):
    TAG = "source"
    pagesize_kib: int | None = scaled("pagesize")
    nodemask: str | None = ctext("nodemask")
    path: str | None = ctext("path")


@dataclass
class MemoryDevice(XMLModel):
    """<memory model='dimm'> hot-pluggable memory; libvirt numbers the DIMM slots."""

    TAG = "memory"
    model: str | None = attr("model", enum("dimm", "nvdimm", "virtio-pmem", "virtio-mem", "sgx-epc"), required=True)
    access: str | None = attr("access", enum("shared", "private"))
    discard: str | None = attr("discard", enum("yes", "no"))
    source: MemorySource | None = child("source", MemorySource)
    target: MemoryTarget | None = child("target", MemoryTarget)
    alias: Alias | None = child("alias", Alias)
    address: Address | None = child("address", Address)


@dataclass
class IOMMUDriver(XMLModel):
    TAG = "driver"
    intremap: str | None = attr("intremap", enum("on", "off"))
    caching_mode: str | None = attr("caching_mode", enum("on", "off"))
    eim: str | None = attr("eim", enum("on", "off"))
    iotlb: str | None = attr("iotlb", enum("on", "off"))
    aw_bits: int | None = attr("aw_bits", UINT)


@dataclass
class IOMMU(XMLModel):
    TAG = "iommu"
    model: str | None = attr("model", enum("intel", "smmuv3", "virtio"), required=True)
    driver: IOMMUDriver | None = child("driver", IOMMUDriver)
    alias: Alias | None = child("alias", Alias)
    address: Address | None = child("address", Address)


@dataclass
class Smartcard(XMLModel):
    TAG = "smartcard"
    mode: str | None = attr("mode", enum("host", "host-certificates", "passthrough"), required=True)
    type: str | None = attr("type")
    certificates: list[str] = ctexts("certificate")
    database: str | None = ctext("database")
    source: ChrSource | None = child("source", ChrSource)
    protocol: str | None = cattr("protocol", "type")
    alias: Alias | None = child("alias", Alias)
    address: Address | None = child("address", Address)
