"""<video>: the display adapter model (cirrus, vga, qxl, virtio, ...) and its memory sizes."""

from __future__ import annotations

from dataclasses import dataclass

from virtstack.virt.xml.base import ONOFF, UINT, XMLModel, attr, child, enum
from virtstack.virt.xml.devices.address import ACPI, Address, Alias

VIDEO_TYPES = ("default", "vga", "cirrus", "vmvga", "xen", "vbox", "qxl", "parallels", "virtio", "gop", "none",
               "bochs", "ramfb")


@dataclass
class Accel(XMLModel):
    TAG = "acceleration"
    accel3d: str | None = attr("accel3d", enum("yes", "no"))
    accel2d: str | None = attr("accel2d", enum("yes", "no"))
    rendernode: str | None = attr("rendernode")


@dataclass
class VideoModel(XMLModel):
    TAG = "model"
    type: str | None = attr("type", enum(*VIDEO_TYPES, error="unknown video model '{}'"))
    ram: int | None = attr("ram", UINT)
    vram: int | None = attr("vram", UINT)
    vram64: int | None = attr("vram64", UINT)
    vgamem: int | None = attr("vgamem", UINT)
    heads: int | None = attr("heads", UINT)
    primary: str | None = attr("primary", enum("yes", "no"))
    acceleration: Accel | None = child("acceleration", Accel)


@dataclass
class VideoDriver(XMLModel):
    TAG = "driver"
    name: str | None = attr("name", enum("qemu", "vhostuser"))
    vgaconf: str | None = attr("vgaconf", enum("io", "on", "off"))
    iommu: bool | None = attr("iommu", ONOFF)
    ats: bool | None = attr("ats", ONOFF)
    packed: bool | None = attr("packed", ONOFF)
    page_per_vq: bool | None = attr("page_per_vq", ONOFF)


@dataclass
class Video(XMLModel):
    TAG = "video"
    driver: VideoDriver | None = child("driver", VideoDriver)
    model: VideoModel | None = child("model", VideoModel)
    alias: Alias | None = child("alias", Alias)
    acpi: ACPI | None = child("acpi", ACPI)
    address: Address | None = child("address", Address)
