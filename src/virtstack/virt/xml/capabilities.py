"""The capabilities XML (`virsh capabilities`): host CPU/topology/security facts and the guests QEMU can run."""

# ruff: noqa: RUF009 - attr()/child()/... are dataclasses.field() wrappers declaring the XML mapping
from __future__ import annotations

import os
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lxml import etree

from virtstack.virt.xml.base import (
    UINT,
    Ctx,
    XMLModel,
    attr,
    child,
    children,
    ctext,
    ctexts,
    flag,
    indent,
    text,
)
from virtstack.virt.xml.parse import parse_xml


# ---------- models (declared once for parse and format) ----------
@dataclass
class Topology(XMLModel):
    TAG = "topology"
    sockets: int | None = attr("sockets", UINT)
    dies: int | None = attr("dies", UINT)
    cores: int | None = attr("cores", UINT)
    threads: int | None = attr("threads", UINT)


@dataclass
class Pages(XMLModel):
    TAG = "pages"
    unit: str | None = attr("unit")
    size: int | None = attr("size", UINT)
    count: int | None = text(UINT)


@dataclass
class HostCPU(XMLModel):
    TAG = "cpu"
    arch: str | None = ctext("arch")
    model: str | None = ctext("model")
    vendor: str | None = ctext("vendor")
    topology: Topology | None = child("topology", Topology)
    pages: list[Pages] = children("pages", Pages)


@dataclass
class PowerManagement(XMLModel):
    TAG = "power_management"
    suspend_mem: bool = flag("suspend_mem")
    suspend_disk: bool = flag("suspend_disk")
    suspend_hybrid: bool = flag("suspend_hybrid")


@dataclass
class IOMMU(XMLModel):
    TAG = "iommu"
    support: str | None = attr("support")


@dataclass
class UriTransports(XMLModel):
    TAG = "uri_transports"
    transports: list[str] = ctexts("uri_transport")


@dataclass
class Migration(XMLModel):
    TAG = "migration_features"
    live: bool = flag("live")
    uri_transports: UriTransports | None = child("uri_transports", UriTransports)


@dataclass
class Memory(XMLModel):
    TAG = "memory"
    unit: str | None = attr("unit")
    value: int | None = text(UINT)


@dataclass
class Sibling(XMLModel):
    TAG = "sibling"
    id: int | None = attr("id", UINT)
    value: int | None = attr("value", UINT)


@dataclass
class Distances(XMLModel):
    TAG = "distances"
    siblings: list[Sibling] = children("sibling", Sibling)


@dataclass
class CellCPU(XMLModel):
    TAG = "cpu"
    id: int | None = attr("id", UINT)
    socket_id: int | None = attr("socket_id", UINT)
    die_id: int | None = attr("die_id", UINT)
    core_id: int | None = attr("core_id", UINT)
    siblings: str | None = attr("siblings")


@dataclass
class CellCPUs(XMLModel):
    TAG = "cpus"
    num: int | None = attr("num", UINT)
    cpus: list[CellCPU] = children("cpu", CellCPU)


@dataclass
class Cell(XMLModel):
    TAG = "cell"
    id: int | None = attr("id", UINT)
    memory: Memory | None = child("memory", Memory)
    pages: list[Pages] = children("pages", Pages)
    distances: Distances | None = child("distances", Distances)
    cpus: CellCPUs | None = child("cpus", CellCPUs)


@dataclass
class Cells(XMLModel):
    TAG = "cells"
    num: int | None = attr("num", UINT)
    cells: list[Cell] = children("cell", Cell)


@dataclass
class HostTopology(XMLModel):
    TAG = "topology"
    cells: Cells | None = child("cells", Cells)


@dataclass
class BaseLabel(XMLModel):
    TAG = "baselabel"
    type: str | None = attr("type")
    label: str | None = text()


@dataclass
class SecModel(XMLModel):
    TAG = "secmodel"
    model: str | None = ctext("model")
    doi: str | None = ctext("doi")
    baselabels: list[BaseLabel] = children("baselabel", BaseLabel)


@dataclass
class Host(XMLModel):
    TAG = "host"
    uuid: str | None = ctext("uuid")
    cpu: HostCPU | None = child("cpu", HostCPU)
    power_management: PowerManagement | None = child("power_management", PowerManagement)
    iommu: IOMMU | None = child("iommu", IOMMU)
    migration: Migration | None = child("migration_features", Migration)
    topology: HostTopology | None = child("topology", HostTopology)
    secmodels: list[SecModel] = children("secmodel", SecModel)


@dataclass
class Machine(XMLModel):
    TAG = "machine"
    canonical: str | None = attr("canonical")
    max_cpus: int | None = attr("maxCpus", UINT)
    deprecated: str | None = attr("deprecated")
    name: str | None = text()


@dataclass
class GuestDomain(XMLModel):
    TAG = "domain"
    type: str | None = attr("type")


@dataclass
class GuestArch(XMLModel):
    TAG = "arch"
    name: str | None = attr("name")
    wordsize: int | None = ctext("wordsize", UINT)
    emulator: str | None = ctext("emulator")
    machines: list[Machine] = children("machine", Machine)
    domains: list[GuestDomain] = children("domain", GuestDomain)


@dataclass
class Toggle(XMLModel):
    default: str | None = attr("default")
    toggle: str | None = attr("toggle")


@dataclass
class GuestFeatures(XMLModel):
    TAG = "features"
    pae: bool = flag("pae")
    nonpae: bool = flag("nonpae")
    acpi: Toggle | None = child("acpi", Toggle)
    apic: Toggle | None = child("apic", Toggle)
    cpuselection: bool = flag("cpuselection")
    deviceboot: bool = flag("deviceboot")
    disksnapshot: Toggle | None = child("disksnapshot", Toggle)


@dataclass
class Guest(XMLModel):
    TAG = "guest"
    os_type: str | None = ctext("os_type")
    arch: GuestArch | None = child("arch", GuestArch)
    features: GuestFeatures | None = child("features", GuestFeatures)


@dataclass
class Capabilities(XMLModel):
    TAG = "capabilities"
    host: Host | None = child("host", Host)
    guests: list[Guest] = children("guest", Guest)


# ---------- building from the QEMU probe and host facts ----------
class MachineLike(Protocol):
    name: str
    alias: str | None
    max_cpus: int
    deprecated: bool


class CapsLike(Protocol):
    """What capabilities need from `QemuCaps`; tests may hand in their own."""

    emulator: str
    arch: str
    machines: list[Any]


@dataclass
class HostFacts:
    """Facts about this host, gathered by `host_facts()` or given by a test."""

    uuid: str
    arch: str = "x86_64"
    cpu_vendor: str | None = None
    cpu_model: str | None = None
    sockets: int = 1
    dies: int = 1
    cores: int = 1
    threads: int = 1
    memory_kib: int = 0
    page_sizes_kib: tuple[int, ...] = (4, 2048, 1048576)
    kvm_usable: bool = False
    suspend: tuple[str, ...] = ()


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def host_facts(*, kvm_usable: bool = False) -> HostFacts:
    """Read this host: SMBIOS/machine-id UUID, /proc/cpuinfo vendor, CPU count, /proc/meminfo memory.

    Whether KVM is usable is a decision of the caller (the KVM speed probe), not of this module.
    """
    raw_uuid = _read("/sys/class/dmi/id/product_uuid").strip()
    try:
        host_uuid = str(uuidlib.UUID(raw_uuid))
    except ValueError:
        mid = _read("/etc/machine-id").strip()
        host_uuid = str(uuidlib.UUID(mid)) if len(mid) == 32 else str(uuidlib.uuid5(uuidlib.NAMESPACE_DNS, os.uname().nodename))
    vendor = None
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("vendor_id"):
            v = line.split(":", 1)[1].strip()
            vendor = {"AuthenticAMD": "AMD", "GenuineIntel": "Intel"}.get(v, v)
            break
    mem = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1])
    ncpu = os.cpu_count() or 1
    return HostFacts(
        uuid=host_uuid, arch=os.uname().machine, cpu_vendor=vendor, cores=ncpu, memory_kib=mem, kvm_usable=kvm_usable
    )


def build_capabilities(caps: CapsLike, facts: HostFacts) -> Capabilities:
    """The capabilities document libvirt's QEMU driver reports for this emulator and host."""
    cpus = [
        CellCPU(id=i, socket_id=0, die_id=0, core_id=i, siblings=str(i))
        for i in range(facts.sockets * facts.dies * facts.cores * facts.threads)
    ]
    host = Host(
        uuid=facts.uuid,
        cpu=HostCPU(
            arch=facts.arch,
            model=facts.cpu_model,
            vendor=facts.cpu_vendor,
            topology=Topology(sockets=facts.sockets, dies=facts.dies, cores=facts.cores, threads=facts.threads),
            pages=[Pages(unit="KiB", size=s) for s in facts.page_sizes_kib],
        ),
        power_management=PowerManagement(
            suspend_mem="mem" in facts.suspend, suspend_disk="disk" in facts.suspend,
            suspend_hybrid="hybrid" in facts.suspend,
        ),
        iommu=IOMMU(support="no"),
        migration=Migration(live=True, uri_transports=UriTransports(transports=["tcp", "rdma"])),
        topology=HostTopology(
            cells=Cells(
                num=1,
                cells=[
                    Cell(
                        id=0,
                        memory=Memory(unit="KiB", value=facts.memory_kib),
                        distances=Distances(siblings=[Sibling(id=0, value=10)]),
                        cpus=CellCPUs(num=len(cpus), cpus=cpus),
                    )
                ],
            )
        ),
        secmodels=[
            SecModel(model="none", doi="0"),
            SecModel(model="dac", doi="0", baselabels=[BaseLabel("kvm", "+0:+0"), BaseLabel("qemu", "+0:+0")]),
        ],
    )
    machines: list[Machine] = []
    for m in caps.machines:
        if getattr(m, "name", "") == "none":
            continue
        dep = "yes" if getattr(m, "deprecated", False) else None
        mc = getattr(m, "max_cpus", None) or None
        machines.append(Machine(max_cpus=mc, deprecated=dep, name=m.name))
        if getattr(m, "alias", None):
            machines.append(Machine(canonical=m.name, max_cpus=mc, deprecated=dep, name=m.alias))
    domains = [GuestDomain("qemu")]
    if facts.kvm_usable:
        domains.append(GuestDomain("kvm"))
    guest = Guest(
        os_type="hvm",
        arch=GuestArch(
            name=caps.arch or "x86_64", wordsize=64, emulator=caps.emulator, machines=machines, domains=domains
        ),
        features=GuestFeatures(
            acpi=Toggle("on", "yes"), apic=Toggle("on", "no"), cpuselection=True, deviceboot=True,
            disksnapshot=Toggle("on", "no"),
        ),
    )
    return Capabilities(host=host, guests=[guest])


def format_capabilities(c: Capabilities) -> str:
    """libvirt's layout: 2-space indentation and a blank line around each top-level section."""
    el = c.to_element(Ctx())
    assert el is not None
    out = indent(el)
    return out.replace("<capabilities>\n", "<capabilities>\n\n").replace("  </host>\n", "  </host>\n\n").replace(
        "  </guest>\n", "  </guest>\n\n"
    )


def parse_capabilities(xml: str) -> Capabilities:
    """Parse a capabilities document in the layout `format_capabilities` writes."""
    root = parse_xml(xml, "(capabilities)")
    return Capabilities.from_element(root)


def to_etree(c: Capabilities) -> etree._Element:
    return etree.fromstring(format_capabilities(c).encode())
