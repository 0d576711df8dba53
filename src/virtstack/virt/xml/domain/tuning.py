"""Resource tuning elements: <blkiotune>, <memtune>, <memoryBacking>, <iothreads>, <cputune>, <numatune>."""

from __future__ import annotations

from dataclasses import dataclass

from virtstack.virt.xml.base import (
    INT,
    UINT,
    XMLModel,
    attr,
    cattr,
    child,
    children,
    ctext,
    enum,
    flag,
    scaled,
    text,
)
from virtstack.virt.xml.domain.misc import CPUSET


@dataclass
class BlkioDevice(XMLModel):
    TAG = "device"
    path: str | None = ctext("path")
    weight: int | None = ctext("weight", UINT)
    read_bytes_sec: int | None = ctext("read_bytes_sec", UINT)
    write_bytes_sec: int | None = ctext("write_bytes_sec", UINT)
    read_iops_sec: int | None = ctext("read_iops_sec", UINT)
    write_iops_sec: int | None = ctext("write_iops_sec", UINT)


@dataclass
class BlkioTune(XMLModel):
    TAG = "blkiotune"
    weight: int | None = ctext("weight", UINT)
    devices: list[BlkioDevice] = children("device", BlkioDevice)


@dataclass
class MemTune(XMLModel):
    """Limits kept in KiB."""

    TAG = "memtune"
    hard_limit: int | None = scaled("hard_limit")
    soft_limit: int | None = scaled("soft_limit")
    min_guarantee: int | None = scaled("min_guarantee")
    swap_hard_limit: int | None = scaled("swap_hard_limit")


@dataclass
class HugePage(XMLModel):
    TAG = "page"
    size: int | None = attr("size", UINT)
    unit: str | None = attr("unit")
    nodeset: str | None = attr("nodeset")

    def validate(self) -> None:
        from virtstack.virt.xml.base import scale_to_kib

        if self.size is not None:
            self.size = scale_to_kib(str(self.size), self.unit, "./memoryBacking/hugepages/page/@size")
            self.unit = "KiB"


@dataclass
class HugePages(XMLModel):
    TAG = "hugepages"
    pages: list[HugePage] = children("page", HugePage)


@dataclass
class MemoryBacking(XMLModel):
    TAG = "memoryBacking"
    hugepages: HugePages | None = child("hugepages", HugePages)
    nosharepages: bool = flag("nosharepages")
    locked: bool = flag("locked")
    source: str | None = cattr("source", "type")
    access: str | None = cattr("access", "mode")
    allocation: str | None = cattr("allocation", "mode")
    discard: bool = flag("discard")


@dataclass
class IOThread(XMLModel):
    TAG = "iothread"
    id: int | None = attr("id", UINT, required=True)


@dataclass
class IOThreadIDs(XMLModel):
    TAG = "iothreadids"
    iothreads: list[IOThread] = children("iothread", IOThread)


@dataclass
class VCPUPin(XMLModel):
    TAG = "vcpupin"
    vcpu: int | None = attr("vcpu", UINT, required=True)
    cpuset: str | None = attr("cpuset", CPUSET, required=True)


@dataclass
class CPUSetPin(XMLModel):
    cpuset: str | None = attr("cpuset", CPUSET, required=True)


@dataclass
class IOThreadPin(XMLModel):
    TAG = "iothreadpin"
    iothread: int | None = attr("iothread", UINT, required=True)
    cpuset: str | None = attr("cpuset", CPUSET, required=True)


@dataclass
class CPUTune(XMLModel):
    TAG = "cputune"
    shares: int | None = ctext("shares", UINT)
    period: int | None = ctext("period", UINT)
    quota: int | None = ctext("quota", INT)
    global_period: int | None = ctext("global_period", UINT)
    global_quota: int | None = ctext("global_quota", INT)
    emulator_period: int | None = ctext("emulator_period", UINT)
    emulator_quota: int | None = ctext("emulator_quota", INT)
    iothread_period: int | None = ctext("iothread_period", UINT)
    iothread_quota: int | None = ctext("iothread_quota", INT)
    vcpupins: list[VCPUPin] = children("vcpupin", VCPUPin)
    emulatorpin: CPUSetPin | None = child("emulatorpin", CPUSetPin)
    iothreadpins: list[IOThreadPin] = children("iothreadpin", IOThreadPin)


@dataclass
class NumaMemory(XMLModel):
    TAG = "memory"
    mode: str | None = attr("mode", enum("strict", "preferred", "interleave", "restrictive"))
    nodeset: str | None = attr("nodeset", CPUSET)
    placement: str | None = attr("placement", enum("static", "auto"))


@dataclass
class MemNode(XMLModel):
    TAG = "memnode"
    cellid: int | None = attr("cellid", UINT, required=True)
    mode: str | None = attr("mode", enum("strict", "preferred", "interleave", "restrictive"))
    nodeset: str | None = attr("nodeset", CPUSET)


@dataclass
class NumaTune(XMLModel):
    TAG = "numatune"
    memory: NumaMemory | None = child("memory", NumaMemory)
    memnodes: list[MemNode] = children("memnode", MemNode)


@dataclass
class Entry(XMLModel):
    TAG = "entry"
    name: str | None = attr("name")
    value: str | None = text()


@dataclass
class SysinfoBlock(XMLModel):
    entries: list[Entry] = children("entry", Entry)


@dataclass
class Sysinfo(XMLModel):
    """<sysinfo type='smbios'>: the SMBIOS tables handed to the guest."""

    TAG = "sysinfo"
    type: str | None = attr("type", enum("smbios", "fwcfg"), required=True)
    bios: SysinfoBlock | None = child("bios", SysinfoBlock)
    system: SysinfoBlock | None = child("system", SysinfoBlock)
    base_board: SysinfoBlock | None = child("baseBoard", SysinfoBlock)
    chassis: SysinfoBlock | None = child("chassis", SysinfoBlock)
    oem_strings: SysinfoBlock | None = child("oemStrings", SysinfoBlock)


@dataclass
class SecLabel(XMLModel):
    """Domain <seclabel>: generated (dynamic) labels are runtime state."""

    TAG = "seclabel"
    type: str | None = attr("type", enum("dynamic", "static", "none"))
    model: str | None = attr("model")
    relabel: str | None = attr("relabel", enum("yes", "no"))
    label: str | None = ctext("label")
    imagelabel: str | None = ctext("imagelabel", live=True)
    baselabel: str | None = ctext("baselabel")

    def validate(self) -> None:
        if self.type == "dynamic" and self.relabel is None:
            self.relabel = "yes"


@dataclass
class Resource(XMLModel):
    TAG = "resource"
    partition: str | None = ctext("partition")
