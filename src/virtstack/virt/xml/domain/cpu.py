"""The <cpu> element: mode, model, topology, features and guest NUMA cells."""

from __future__ import annotations

from dataclasses import dataclass

from virtstack.virt.errors import ErrorCode, ErrorDomain, error_factory
from virtstack.virt.xml.base import (
    ONOFF,
    UINT,
    Conv,
    Error,
    XMLError,
    XMLModel,
    attr,
    child,
    children,
    ctext,
    enum,
    text,
)

CPUError = error_factory(ErrorDomain.CPU)
CPU_MODES = ("custom", "host-model", "host-passthrough", "maximum")


def _cpu_mode(s: str) -> str:
    if s not in CPU_MODES:
        raise CPUError(ErrorCode.CONFIG_UNSUPPORTED, f"Invalid mode attribute '{s}'")
    return s


CPU_MODE = Conv(_cpu_mode, str)


@dataclass
class CPUModel(XMLModel):
    TAG = "model"
    fallback: str | None = attr("fallback", enum("allow", "forbid"))
    vendor_id: str | None = attr("vendor_id")
    name: str | None = text()


@dataclass
class Topology(XMLModel):
    TAG = "topology"
    sockets: int | None = attr("sockets", UINT)
    dies: int | None = attr("dies", UINT)
    cores: int | None = attr("cores", UINT)
    threads: int | None = attr("threads", UINT)


@dataclass
class Cache(XMLModel):
    TAG = "cache"
    level: int | None = attr("level", UINT)
    mode: str | None = attr("mode", enum("emulate", "passthrough", "disable"), required=True)


@dataclass
class MaxPhysAddr(XMLModel):
    TAG = "maxphysaddr"
    mode: str | None = attr("mode", enum("emulate", "passthrough"), required=True)
    bits: int | None = attr("bits", UINT)
    limit: int | None = attr("limit", UINT)


@dataclass
class CPUFeature(XMLModel):
    TAG = "feature"
    policy: str | None = attr("policy", enum("force", "require", "optional", "disable", "forbid"))
    name: str | None = attr("name", required=True)


@dataclass
class Cell(XMLModel):
    """A guest NUMA cell; memory kept in KiB."""

    TAG = "cell"
    id: int | None = attr("id", UINT)
    cpus: str | None = attr("cpus")
    memory: int | None = attr("memory", UINT, required=True)
    unit: str | None = attr("unit")
    mem_access: str | None = attr("memAccess", enum("shared", "private"))
    discard: bool | None = attr("discard", enum("yes", "no"))

    def validate(self) -> None:
        from virtstack.virt.xml.base import scale_to_kib

        self.memory = scale_to_kib(str(self.memory), self.unit, "./cpu/numa/cell/@memory")
        self.unit = "KiB"


@dataclass
class Numa(XMLModel):
    TAG = "numa"
    cells: list[Cell] = children("cell", Cell)

    def validate(self) -> None:
        ids = [c.id if c.id is not None else i for i, c in enumerate(self.cells)]
        if sorted(ids) != list(range(len(ids))):
            raise XMLError(
                ErrorCode.XML_ERROR,
                "Exactly one 'cell' element per guest NUMA cell allowed, non-contiguous ranges or ranges not "
                "starting from 0 are not allowed",
            )
        for i, c in zip(ids, self.cells, strict=True):
            c.id = i
        self.cells.sort(key=lambda c: c.id or 0)


@dataclass
class CPU(XMLModel):
    TAG = "cpu"
    mode: str | None = attr("mode", CPU_MODE)
    match: str | None = attr("match", enum("minimum", "exact", "strict"))
    check: str | None = attr("check", enum("none", "partial", "full"))
    migratable: bool | None = attr("migratable", ONOFF)
    model: CPUModel | None = child("model", CPUModel)
    vendor: str | None = ctext("vendor")
    topology: Topology | None = child("topology", Topology)
    cache: Cache | None = child("cache", Cache)
    maxphysaddr: MaxPhysAddr | None = child("maxphysaddr", MaxPhysAddr)
    features: list[CPUFeature] = children("feature", CPUFeature)
    numa: Numa | None = child("numa", Numa)

    def validate(self) -> None:
        if self.mode is None and self.model is None and self.topology is None and self.numa is None:
            return
        if self.mode is None and self.model is not None:
            self.mode = "custom"  # without a model libvirt writes a bare <cpu> (topology/NUMA only)
        if self.mode == "custom" and self.match is None and self.model is not None:
            self.match = "exact"
        if self.topology is not None:
            t = self.topology
            for n in ("sockets", "dies", "cores", "threads"):
                if getattr(t, n) == 0:
                    raise Error(ErrorCode.XML_ERROR, f"Invalid '{n}' value in CPU topology")
            if t.dies is None:
                t.dies = 1
