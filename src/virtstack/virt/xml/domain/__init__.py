"""The domain XML: `DomainDef` plus `parse_domain` / `format_domain` in libvirt's format."""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass, field

from lxml import etree

from virtstack.virt.errors import ErrorCode, VirtError
from virtstack.virt.xml.base import (
    INT,
    UINT,
    Conv,
    Ctx,
    Error,
    NotPlain,
    XMLError,
    XMLModel,
    attr,
    child,
    children,
    ctext,
    enum,
    indent,
    raw,
    scaled,
    text,
    xattr,
)
from virtstack.virt.xml.devices import Devices
from virtstack.virt.xml.devices.disk import Disk, disk_index
from virtstack.virt.xml.domain.clock import Clock
from virtstack.virt.xml.domain.cpu import CPU
from virtstack.virt.xml.domain.features import Features
from virtstack.virt.xml.domain.misc import ON_CRASH, ON_POWEROFF, ON_REBOOT, PM, VCPU
from virtstack.virt.xml.domain.os import OS
from virtstack.virt.xml.domain.tuning import (
    BlkioTune,
    CPUTune,
    IOThreadIDs,
    MemoryBacking,
    MemTune,
    NumaMemory,
    NumaTune,
    Resource,
    SecLabel,
    Sysinfo,
)
from virtstack.virt.xml.parse import parse_xml

VIRT_TYPES = ("qemu", "kqemu", "kvm", "xen", "lxc", "uml", "openvz", "test", "vmware", "hyperv", "vbox", "phyp",
              "parallels", "bhyve", "vz", "none")


QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"


def _virt_type(s: str) -> str:
    if s not in VIRT_TYPES:
        raise Error(ErrorCode.CONFIG_UNSUPPORTED, f"invalid domain type {s}")
    return s


def _uuid(s: str) -> uuidlib.UUID:
    try:
        return uuidlib.UUID(s.strip())
    except ValueError:
        raise Error(ErrorCode.INTERNAL_ERROR, "malformed uuid element") from None


UUID = Conv(_uuid, str)
VIRT_TYPE = Conv(_virt_type, str)


@dataclass
class MaxMemory(XMLModel):
    """<maxMemory slots unit>: the ceiling for memory hotplug, kept in KiB."""

    TAG = "maxMemory"
    slots: int | None = attr("slots", UINT)
    unit: str | None = attr("unit")
    kib: int | None = text(UINT)

    def validate(self) -> None:
        from virtstack.virt.xml.base import scale_to_kib

        self.kib = scale_to_kib(str(self.kib or 0), self.unit, "./maxMemory[1]")
        self.unit = "KiB"


@dataclass
class DomainDef(XMLModel):
    """A domain definition, fields in libvirt's element order."""

    TAG = "domain"
    type: str | None = attr("type", VIRT_TYPE)
    id: int | None = attr("id", INT, live=True)
    name: str | None = ctext("name")
    uuid: uuidlib.UUID | None = ctext("uuid", UUID)
    genid: str | None = ctext("genid")
    title: str | None = ctext("title")
    description: str | None = ctext("description")
    metadata: str | None = raw("metadata")
    max_memory: MaxMemory | None = child("maxMemory", MaxMemory)
    memory_kib: int | None = scaled("memory")
    memory_dump_core: str | None = xattr("memory", "dumpCore", enum("on", "off"))
    current_memory_kib: int | None = scaled("currentMemory")
    blkiotune: BlkioTune | None = child("blkiotune", BlkioTune)
    memtune: MemTune | None = child("memtune", MemTune)
    memory_backing: MemoryBacking | None = child("memoryBacking", MemoryBacking)
    vcpu: VCPU | None = child("vcpu", VCPU)
    iothreads: int | None = ctext("iothreads", UINT)
    iothreadids: IOThreadIDs | None = child("iothreadids", IOThreadIDs)
    cputune: CPUTune | None = child("cputune", CPUTune)
    numatune: NumaTune | None = child("numatune", NumaTune)
    resource: Resource | None = child("resource", Resource)
    sysinfo: Sysinfo | None = child("sysinfo", Sysinfo)
    os: OS | None = child("os", OS)
    features: Features | None = child("features", Features)
    cpu: CPU | None = child("cpu", CPU)
    clock: Clock | None = child("clock", Clock)
    on_poweroff: str | None = ctext("on_poweroff", ON_POWEROFF)
    on_reboot: str | None = ctext("on_reboot", ON_REBOOT)
    on_crash: str | None = ctext("on_crash", ON_CRASH)
    pm: PM | None = child("pm", PM)
    devices: Devices = field(default_factory=Devices, metadata={"xml": child("devices", Devices).metadata["xml"]})
    seclabels: list[SecLabel] = children("seclabel", SecLabel)
    qemu_commandline: str | None = raw(f"{{{QEMU_NS}}}commandline")

    def validate(self) -> None:
        """Checks and fill-ins libvirt's generic parser (virDomainDefParseXML) does for every driver."""
        if self.type is None:
            raise Error(ErrorCode.INTERNAL_ERROR, "missing domain type attribute")
        if not self.name:
            raise Error(ErrorCode.NO_NAME, None)
        if "/" in self.name:
            raise Error(ErrorCode.XML_ERROR, f"name {self.name} cannot contain '/'")
        if self.title is not None and "\n" in self.title:
            raise Error(ErrorCode.XML_ERROR, "Domain title can't contain newlines")
        if self.genid == "":
            self.genid = str(uuidlib.uuid4())  # an empty <genid/> asks for a generated one
        if self.os is None or self.os.type is None or self.os.type.value is None:
            raise Error(ErrorCode.XML_ERROR, "an os <type> must be specified")
        cells = self.cpu.numa.cells if self.cpu and self.cpu.numa else []
        if self.memory_kib is None and not cells:
            raise Error(
                ErrorCode.XML_ERROR, "Memory size must be specified via <memory> or in the <numa> configuration"
            )
        if cells:
            # virDomainDefPostParseMemory: with guest NUMA the total is the cells plus hot-plugged DIMMs
            hotplugged = sum(m.target.size_kib or 0 for m in self.devices.memories if m.target is not None)
            self.memory_kib = sum(c.memory or 0 for c in cells) + hotplugged
        assert self.memory_kib is not None
        if self.current_memory_kib is None or self.current_memory_kib > self.memory_kib:
            self.current_memory_kib = self.memory_kib
        if self.vcpu is None:
            self.vcpu = VCPU(placement="static", count=1)
        if self.vcpu.current is not None and self.vcpu.current > (self.vcpu.count or 1):
            raise Error(
                ErrorCode.CONFIG_UNSUPPORTED, "maximum vCPU count must not be less than current vCPU count"
            )
        if self.vcpu.placement == "auto" and (self.numatune is None or self.numatune.memory is None):
            # automatic vCPU placement implies automatic memory placement (numad advice)
            self.numatune = self.numatune or NumaTune()
            self.numatune.memory = NumaMemory(mode="strict", placement="auto")
        if self.on_poweroff is None:
            self.on_poweroff = "destroy"
        if self.on_reboot is None:
            self.on_reboot = "restart"
        if self.on_crash is None:
            self.on_crash = "destroy"
        self.devices.disks = sorted_disks(self.devices.disks)
        if self.clock is None:
            self.clock = Clock(offset="utc")
        elif self.clock.offset is None:
            self.clock.offset = "utc"

    @property
    def vcpus(self) -> int:
        return self.vcpu.count if self.vcpu and self.vcpu.count else 1

    @property
    def ref_uuid(self) -> str:
        return str(self.uuid) if self.uuid else ""


def sorted_disks(disks: list[Disk]) -> list[Disk]:
    """virDomainDiskInsert: a disk goes before the first later disk on its bus with a higher target index,
    else right after the last disk on its bus, else at the end."""
    out: list[Disk] = []
    for disk in disks:
        at = -1
        for i in range(len(out) - 1, -1, -1):
            other = out[i]
            if other.bus != disk.bus:
                continue
            if disk_index(other.target.dev if other.target and other.target.dev else "") > disk_index(
                disk.target.dev if disk.target and disk.target.dev else ""
            ):
                at = i
            elif at == -1:
                at = i + 1
        if at == -1:
            out.append(disk)
        else:
            out.insert(at, disk)
    return out


def _hoist_namespaces(el: etree._Element) -> etree._Element:
    """libvirt declares xmlns:qemu on <domain> itself, not on the namespaced child."""
    if not any(isinstance(c.tag, str) and c.tag.startswith(f"{{{QEMU_NS}}}") for c in el):
        return el
    root = etree.Element(el.tag, nsmap={"qemu": QEMU_NS})
    for k, v in el.attrib.items():
        root.set(k, v)
    root.extend(list(el))
    etree.cleanup_namespaces(root, top_nsmap={"qemu": QEMU_NS})
    return root


def _xmlns_last(text: str) -> str:
    """lxml writes namespace declarations first; libvirt writes xmlns:qemu after type and id."""
    declaration = f" xmlns:qemu='{QEMU_NS}'"
    end = text.index(">")
    if declaration not in text[:end]:
        return text
    return text[:end].replace(declaration, "", 1) + declaration + text[end:]


def parse_domain(xml: str) -> DomainDef:
    """Parse a domain XML document; every problem is a VirtError worded as libvirt words it."""
    root = parse_xml(xml, "(domain_definition)")
    if root.tag != "domain":
        raise XMLError(ErrorCode.XML_ERROR, f"expecting root element of 'domain', not '{root.tag}'")
    try:
        return DomainDef.from_element(root)
    except VirtError:
        raise
    except (ValueError, TypeError) as e:  # defensive: never leak a traceback to a client
        raise Error(ErrorCode.INTERNAL_ERROR, f"cannot parse domain XML: {e}") from None


def format_domain(d: DomainDef, *, inactive: bool = False, secure: bool = False) -> str:
    """The XML `virsh dumpxml` prints: libvirt's element order, 2-space indentation."""
    ctx = Ctx(inactive=inactive, secure=secure)
    out: list[str] = []
    try:
        d.write(ctx, None, "", out)
        text = "".join(out)
    except NotPlain:  # <metadata> or <qemu:commandline>: lxml writes the namespaces
        el = d.to_element(ctx)
        assert el is not None
        el = _hoist_namespaces(el)
        if (inactive or d.id is None) and "id" in el.attrib:
            del el.attrib["id"]
        text = _xmlns_last(indent(el))
    # libvirt always writes <devices> as an open/close pair, even when it is empty
    return text.replace("\n  <devices/>\n", "\n  <devices>\n  </devices>\n")


def to_etree(d: DomainDef, *, inactive: bool = False, secure: bool = False) -> etree._Element:
    """The formatted definition as an lxml element (for callers that query it)."""
    return etree.fromstring(format_domain(d, inactive=inactive, secure=secure))


__all__ = ["DomainDef", "format_domain", "parse_domain"]
