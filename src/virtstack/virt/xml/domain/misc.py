"""Small top-level domain elements: <vcpu>, <pm>, lifecycle actions, CPU set bitmaps."""

from __future__ import annotations

from dataclasses import dataclass

from virtstack.virt.errors import ErrorCode
from virtstack.virt.xml.base import UINT, Conv, Error, XMLModel, attr, child, enum, parse_decimal, text


def parse_cpuset(s: str) -> set[int]:
    """libvirt's bitmap syntax: '0-3,^2,8'."""
    cpus: set[int] = set()
    neg: set[int] = set()
    for part in s.split(","):
        part = part.strip()
        if not part:
            raise ValueError(s)
        target = cpus
        if part.startswith("^"):
            target = neg
            part = part[1:]
        if "-" in part:
            lo, hi = part.split("-", 1)
            a, b = int(lo), int(hi)
            if a > b:
                raise ValueError(s)
            target.update(range(a, b + 1))
        else:
            target.add(int(part))
    return cpus - neg


def format_cpuset(cpus: set[int]) -> str:
    """Compress to ranges the way virBitmapFormat does."""
    out: list[str] = []
    items = sorted(cpus)
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        out.append(str(items[i]) if i == j else f"{items[i]}-{items[j]}")
        i = j + 1
    return ",".join(out)


def _cpuset_parse(s: str) -> str:
    try:
        return format_cpuset(parse_cpuset(s))
    except ValueError:
        raise Error(ErrorCode.XML_ERROR, f"Failed to parse bitmap '{s}'") from None


CPUSET = Conv(_cpuset_parse, str)


def _vcpu_count(s: str) -> int:
    try:
        return parse_decimal(s, maximum=2**32 - 1)
    except ValueError:
        raise Error(ErrorCode.XML_ERROR, "maximum vcpus count must be an integer") from None


VCPU_COUNT = Conv(_vcpu_count, str)


@dataclass
class VCPU(XMLModel):
    TAG = "vcpu"
    placement: str | None = attr("placement", enum("static", "auto"))
    cpuset: str | None = attr("cpuset", CPUSET)
    current: int | None = attr("current", UINT)
    count: int | None = text(VCPU_COUNT)

    def validate(self) -> None:
        if self.count is None:
            self.count = 1
        if self.count == 0:
            raise Error(ErrorCode.XML_ERROR, "Invalid value for number of vCPUs")
        if self.placement is None:
            self.placement = "static"


def lifecycle(name: str, *values: str) -> Conv:
    """Conv for <on_*> actions with libvirt's own error wording."""

    def parse(s: str) -> str:
        if s not in values:
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, f"unknown {name} action: {s}")
        return s

    return Conv(parse, str)


ON_POWEROFF = lifecycle("on_poweroff", "destroy", "restart", "preserve", "rename-restart")
ON_REBOOT = lifecycle("on_reboot", "destroy", "restart", "preserve", "rename-restart")
ON_CRASH = lifecycle(
    "on_crash", "destroy", "restart", "preserve", "rename-restart", "coredump-destroy", "coredump-restart"
)


@dataclass
class Enabled(XMLModel):
    enabled: str | None = attr("enabled", enum("yes", "no"))


@dataclass
class PM(XMLModel):
    TAG = "pm"
    suspend_to_mem: Enabled | None = child("suspend-to-mem", Enabled)
    suspend_to_disk: Enabled | None = child("suspend-to-disk", Enabled)
