"""The <os> element: guest type/arch/machine, boot order, firmware, direct kernel boot."""

from __future__ import annotations

from dataclasses import dataclass

from virtstack.virt.errors import ErrorCode
from virtstack.virt.xml.base import (
    STR,
    UINT,
    YESNO,
    Error,
    XMLModel,
    attr,
    child,
    children,
    ctext,
    enum,
    text,
)
from virtstack.virt.xml.devices.source import StorageSource

BOOT_DEVS = ("fd", "hd", "cdrom", "network")


@dataclass
class OSType(XMLModel):
    """<type arch machine>hvm</type>."""

    TAG = "type"
    arch: str | None = attr("arch")
    machine: str | None = attr("machine")
    value: str | None = text()

    def validate(self) -> None:
        if self.value is not None and self.value not in ("hvm", "linux", "xen", "exe"):
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, f"unknown OS type '{self.value}'")


@dataclass
class Loader(XMLModel):
    """<loader>: firmware image, pflash or rom."""

    TAG = "loader"
    readonly: bool | None = attr("readonly", YESNO)
    secure: bool | None = attr("secure", YESNO)
    stateless: bool | None = attr("stateless", YESNO)
    type: str | None = attr("type", enum("rom", "pflash"))
    format: str | None = attr("format", enum("raw", "qcow2"))
    path: str | None = text()


@dataclass
class Nvram(XMLModel):
    """<nvram>: per-domain UEFI variable store, a path or a storage source."""

    TAG = "nvram"
    template: str | None = attr("template")
    type: str | None = attr("type", enum("file", "block", "network"))
    format: str | None = attr("format", enum("raw", "qcow2"))
    source: StorageSource | None = child("source", StorageSource)
    path: str | None = text()


@dataclass
class FirmwareFeature(XMLModel):
    """<firmware><feature enabled name/> for firmware autoselection."""

    TAG = "feature"
    enabled: bool | None = attr("enabled", YESNO, required=True)
    name: str | None = attr("name", enum("enrolled-keys", "secure-boot"), required=True)


@dataclass
class Firmware(XMLModel):
    TAG = "firmware"
    features: list[FirmwareFeature] = children("feature", FirmwareFeature)


@dataclass
class Boot(XMLModel):
    TAG = "boot"
    dev: str | None = attr("dev", enum(*BOOT_DEVS), required=True)


@dataclass
class BootMenu(XMLModel):
    TAG = "bootmenu"
    enable: bool | None = attr("enable", YESNO)
    timeout: int | None = attr("timeout", UINT)

    def validate(self) -> None:
        if self.timeout is not None and self.timeout > 65535:
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, "invalid value for boot menu timeout, must be in range [0,65535]")


@dataclass
class AcpiTable(XMLModel):
    TAG = "table"
    type: str | None = attr("type", enum("slic"), required=True)
    path: str | None = text()


@dataclass
class OSAcpi(XMLModel):
    TAG = "acpi"
    tables: list[AcpiTable] = children("table", AcpiTable)


@dataclass
class BIOS(XMLModel):
    TAG = "bios"
    useserial: bool | None = attr("useserial", YESNO)
    reboot_timeout: int | None = attr("rebootTimeout", STR)


@dataclass
class SMBIOS(XMLModel):
    TAG = "smbios"
    mode: str | None = attr("mode", enum("emulate", "host", "sysinfo"), required=True)


@dataclass
class OS(XMLModel):
    """libvirt writes: type, firmware, loader, nvram, kernel..dtb, acpi, boot*, bootmenu, smbios, bios."""

    TAG = "os"
    firmware: str | None = attr("firmware", enum("bios", "efi"))
    type: OSType | None = child("type", OSType)
    firmware_info: Firmware | None = child("firmware", Firmware)
    loader: Loader | None = child("loader", Loader)
    nvram: Nvram | None = child("nvram", Nvram)
    kernel: str | None = ctext("kernel")
    initrd: str | None = ctext("initrd")
    cmdline: str | None = ctext("cmdline")
    dtb: str | None = ctext("dtb")
    acpi: OSAcpi | None = child("acpi", OSAcpi)
    boot: list[Boot] = children("boot", Boot)
    bootmenu: BootMenu | None = child("bootmenu", BootMenu)
    smbios: SMBIOS | None = child("smbios", SMBIOS)
    bios: BIOS | None = child("bios", BIOS)
    init: str | None = ctext("init")
    initdir: str | None = ctext("initdir")
    inituser: str | None = ctext("inituser")

    @property
    def boot_devs(self) -> list[str]:
        return [b.dev for b in self.boot if b.dev]


__all__ = ["OS", "Boot", "BootMenu", "Firmware", "Loader", "Nvram", "OSType"]
