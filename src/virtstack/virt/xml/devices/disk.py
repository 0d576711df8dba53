"""<disk>: block devices (disk, cdrom, floppy, lun) with their source chain, driver and target."""

from __future__ import annotations

import re
from dataclasses import dataclass

from virtstack.virt.errors import ErrorCode
from virtstack.virt.xml.base import (
    ONOFF,
    SELF,
    UINT,
    YESNO,
    Error,
    XMLModel,
    attr,
    child,
    ctext,
    enum,
    flag,
)
from virtstack.virt.xml.devices.address import ACPI, Address, Alias, BootOrder
from virtstack.virt.xml.devices.source import Auth, Encryption, StorageSource

DISK_TYPES = ("file", "block", "dir", "network", "volume", "nvme", "vhostuser")
DISK_DEVICES = ("disk", "cdrom", "floppy", "lun")
DISK_BUSES = ("ide", "fdc", "scsi", "virtio", "xen", "usb", "uml", "sata", "sd")
FORMATS = (
    "none", "raw", "dir", "bochs", "cloop", "dmg", "iso", "vpc", "vdi", "fat", "vhd", "ploop", "cow",
    "qcow", "qcow2", "qed", "vmdk",
)


@dataclass
class Driver(XMLModel):
    """<driver name type cache io ...>: the QEMU block layer settings."""

    TAG = "driver"
    name: str | None = attr("name")
    type: str | None = attr("type", enum(*FORMATS, error="unknown driver format value '{}'"))
    cache: str | None = attr("cache", enum("default", "none", "writethrough", "writeback", "directsync", "unsafe"))
    error_policy: str | None = attr("error_policy", enum("default", "stop", "report", "ignore", "enospace"))
    rerror_policy: str | None = attr("rerror_policy", enum("default", "stop", "report", "ignore"))
    io: str | None = attr("io", enum("native", "threads", "io_uring"))
    ioeventfd: bool | None = attr("ioeventfd", ONOFF)
    event_idx: bool | None = attr("event_idx", ONOFF)
    copy_on_read: bool | None = attr("copy_on_read", ONOFF)
    discard: str | None = attr("discard", enum("unmap", "ignore"))
    iothread: int | None = attr("iothread", UINT)
    detect_zeroes: str | None = attr("detect_zeroes", enum("off", "on", "unmap"))
    queues: int | None = attr("queues", UINT)
    queue_size: int | None = attr("queue_size", UINT)
    iommu: bool | None = attr("iommu", ONOFF)
    ats: bool | None = attr("ats", ONOFF)
    packed: bool | None = attr("packed", ONOFF)
    page_per_vq: bool | None = attr("page_per_vq", ONOFF)


@dataclass
class Format(XMLModel):
    TAG = "format"
    type: str | None = attr("type", enum(*FORMATS))


@dataclass
class BackingStore(XMLModel):
    """<backingStore type index>: one layer of the backing chain; empty element ends the chain."""

    TAG = "backingStore"
    type: str | None = attr("type", enum(*DISK_TYPES))
    index: int | None = attr("index", UINT, live=True)
    format: Format | None = child("format", Format)
    source: StorageSource | None = child("source", StorageSource)
    backing: BackingStore | None = child("backingStore", SELF)


@dataclass
class Target(XMLModel):
    TAG = "target"
    dev: str | None = attr("dev")
    bus: str | None = attr("bus", enum(*DISK_BUSES))
    tray: str | None = attr("tray", enum("open", "closed"))
    removable: bool | None = attr("removable", ONOFF)
    rotation_rate: int | None = attr("rotation_rate", UINT)

    def validate(self) -> None:
        if self.tray == "closed":
            self.tray = None  # the default; libvirt writes only an open tray


@dataclass
class BlockIO(XMLModel):
    TAG = "blockio"
    logical_block_size: int | None = attr("logical_block_size", UINT)
    physical_block_size: int | None = attr("physical_block_size", UINT)
    discard_granularity: int | None = attr("discard_granularity", UINT)


@dataclass
class Geometry(XMLModel):
    TAG = "geometry"
    cyls: int | None = attr("cyls", UINT)
    heads: int | None = attr("heads", UINT)
    secs: int | None = attr("secs", UINT)
    trans: str | None = attr("trans", enum("auto", "none", "lba"))


@dataclass
class IOTune(XMLModel):
    TAG = "iotune"
    total_bytes_sec: int | None = ctext("total_bytes_sec", UINT)
    read_bytes_sec: int | None = ctext("read_bytes_sec", UINT)
    write_bytes_sec: int | None = ctext("write_bytes_sec", UINT)
    total_iops_sec: int | None = ctext("total_iops_sec", UINT)
    read_iops_sec: int | None = ctext("read_iops_sec", UINT)
    write_iops_sec: int | None = ctext("write_iops_sec", UINT)
    total_bytes_sec_max: int | None = ctext("total_bytes_sec_max", UINT)
    read_bytes_sec_max: int | None = ctext("read_bytes_sec_max", UINT)
    write_bytes_sec_max: int | None = ctext("write_bytes_sec_max", UINT)
    total_iops_sec_max: int | None = ctext("total_iops_sec_max", UINT)
    read_iops_sec_max: int | None = ctext("read_iops_sec_max", UINT)
    write_iops_sec_max: int | None = ctext("write_iops_sec_max", UINT)
    size_iops_sec: int | None = ctext("size_iops_sec", UINT)
    group_name: str | None = ctext("group_name")


@dataclass
class Disk(XMLModel):
    """libvirt order: driver, auth, source, backingStore, target, iotune, readonly, serial, ..., then device
    info (boot, alias, acpi, address)."""

    TAG = "disk"
    type: str | None = attr("type", enum(*DISK_TYPES))
    device: str | None = attr("device", enum(*DISK_DEVICES))
    model: str | None = attr("model", enum("virtio", "virtio-transitional", "virtio-non-transitional"))
    snapshot: str | None = attr("snapshot", enum("no", "internal", "external", "manual"))
    rawio: bool | None = attr("rawio", YESNO)
    sgio: str | None = attr("sgio", enum("filtered", "unfiltered"))
    driver: Driver | None = child("driver", Driver)
    auth: Auth | None = child("auth", Auth)
    source: StorageSource | None = child("source", StorageSource)
    backing: BackingStore | None = child("backingStore", BackingStore)
    geometry: Geometry | None = child("geometry", Geometry)
    blockio: BlockIO | None = child("blockio", BlockIO)
    target: Target | None = child("target", Target)
    iotune: IOTune | None = child("iotune", IOTune)
    readonly: bool = flag("readonly")
    shareable: bool = flag("shareable")
    transient: bool = flag("transient")
    serial: str | None = ctext("serial", strip=False)  # libvirt keeps its spaces
    wwn: str | None = ctext("wwn")
    vendor: str | None = ctext("vendor")
    product: str | None = ctext("product")
    encryption: Encryption | None = child("encryption", Encryption)
    boot: BootOrder | None = child("boot", BootOrder)
    alias: Alias | None = child("alias", Alias)
    acpi: ACPI | None = child("acpi", ACPI)
    address: Address | None = child("address", Address)

    def validate(self) -> None:
        if self.type is None:
            self.type = "file"
        if self.device is None:
            self.device = "disk"
        if self.device == "cdrom":
            self.readonly = True  # a CD-ROM is read-only whatever the XML says
        if self.readonly and self.snapshot == "no":
            self.snapshot = None  # nothing to snapshot on a read-only disk: 'no' is implied
        src = self.source
        if self.target is None or self.target.dev is None:
            where = ""
            if src is not None:
                where = src.file or src.dev or src.dir or src.name or src.volume or ""
            raise Error(ErrorCode.NO_TARGET, where or "(null)")
        dev = self.target.dev
        if self.target.bus is None:
            self.target.bus = _bus_from_dev(dev, self.device)
        if self.encryption is not None and src is not None and src.encryption is not None:
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, "an <encryption> definition already found for disk source")
        if self.auth is not None and src is not None and src.auth is not None:
            raise Error(ErrorCode.XML_ERROR, "an <auth> definition already found for disk source")
        if (self.vendor or self.product) and self.target.bus != "scsi":
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, "Only scsi disk supports vendor and product")
        auth = self.auth or (src.auth if src else None)
        if auth is not None and auth.secret is not None and src is not None and src.protocol:
            want = {"iscsi": "iscsi", "rbd": "ceph"}.get(src.protocol)
            if want is not None and auth.secret.type != want:
                raise Error(ErrorCode.CONFIG_UNSUPPORTED, f"invalid secret type '{auth.secret.type}'")
        if self.driver is not None and self.driver.type in ("cow",):
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, f"'{self.driver.type}' storage format is not supported")
        if self.driver is not None and self.driver.type == "iso":
            raise Error(
                ErrorCode.CONFIG_UNSUPPORTED,
                "storage format 'iso' is not directly supported by QEMU, use 'raw' instead",
            )

    @property
    def bus(self) -> str:
        return self.target.bus if self.target and self.target.bus else "ide"


_DISK_NAME = re.compile(r"^(?:hd|sd|vd|fd|xvd|ubd)([a-z]+)$")


def disk_index(dev: str) -> int:
    """virDiskNameToIndex: 'hda' -> 0, 'vdb' -> 1, 'sdaa' -> 26; -1 when `dev` is not a disk name."""
    m = _DISK_NAME.match(dev)
    if m is None:
        return -1
    idx = 0
    for ch in m.group(1):
        idx = idx * 26 + (ord(ch) - ord("a") + 1)
    return idx - 1


def _bus_from_dev(dev: str, device: str) -> str:
    """libvirt guesses the bus from the target name when <target bus> is absent."""
    if dev.startswith("hd"):
        return "ide"
    if dev.startswith("sd"):
        return "scsi"
    if dev.startswith("vd"):
        return "virtio"
    if dev.startswith("fd"):
        return "fdc"
    if dev.startswith("xvd"):
        return "xen"
    if dev.startswith("ubd"):
        return "uml"
    raise Error(ErrorCode.INTERNAL_ERROR, f"Invalid prefix or unsupported bus for disk target '{dev}'")


__all__ = ["BackingStore", "Disk", "Driver", "Format", "IOTune", "Target"]
