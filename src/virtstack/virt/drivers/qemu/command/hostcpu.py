"""The host-CPU side of a custom guest CPU: libvirt's x86 CPU map, this host's features, the start check.

Before a KVM guest with a custom CPU starts (check='partial', the KVM default), libvirt compares the
guest CPU with the host's: every feature the named model has in libvirt's CPU map (not QEMU's model
of the same name), plus each <feature policy='require'>, must be on the host, else the start fails
with "Host CPU does not provide required features: ..." listing them in the map's feature order.
An optional feature becomes on or off by what the accelerator offers. TCG guests are compared with
what TCG emulates, and only when they ask (their default check is 'none').

The CPU map facts (feature order and aliases, model feature sets) come from libvirt 9.0's
src/cpu_map, stored in data/cpu_map_x86.json; the host's features are the kernel's view of CPUID
(/proc/cpuinfo flags), whose names the map's aliases translate.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from virtstack.virt.errors import ErrorCode, ErrorDomain, error_factory

CpuError = error_factory(ErrorDomain.CPU)

_DATA = Path(__file__).with_name("data") / "cpu_map_x86.json"
CPUINFO = "/proc/cpuinfo"


@dataclass(frozen=True)
class CpuMap:
    """libvirt's x86 CPU map: features in map order, alias -> name, model -> features."""

    order: tuple[str, ...]
    aliases: dict[str, str]
    models: dict[str, tuple[str, ...]]
    # features a model lost (QEMU dropped them from its model): libvirt neither requires them nor lets
    # QEMU's older machine types bring them back, so a custom CPU turns each off explicitly
    removed: dict[str, tuple[str, ...]]
    vendors: dict[str, str | None]
    signatures: dict[str, tuple[tuple[int, int], ...]]
    decodable: tuple[str, ...]  # models libvirt may pick for a host CPU, in map order
    guest_decodable: tuple[str, ...]  # models libvirt may pick for a guest's host-model CPU, in map order

    def canonical(self, name: str) -> str:
        return self.aliases.get(name, name)

    def sort(self, names: AbstractSet[str]) -> list[str]:
        rank = {n: i for i, n in enumerate(self.order)}
        return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


@functools.cache
def cpu_map() -> CpuMap:
    data = json.loads(_DATA.read_text())
    aliases: dict[str, str] = {}
    for f in data["features"]:
        for a in f["aliases"]:
            aliases[a] = f["name"]
    # the kernel's spellings of a few map features (cpuinfo shows Linux names)
    aliases.update({"tsc_deadline_timer": "tsc-deadline", "sha_ni": "sha-ni", "cr8_legacy": "cr8legacy"})
    return CpuMap(
        order=tuple(f["name"] for f in data["features"]),
        aliases=aliases,
        models={name: tuple(m["features"]) for name, m in data["models"].items()},
        removed={name: tuple(m.get("removed", ())) for name, m in data["models"].items()},
        vendors={name: m.get("vendor") for name, m in data["models"].items()},
        signatures={
            name: tuple((int(f), int(mo)) for f, mo in m.get("signatures", ())) for name, m in data["models"].items()
        },
        decodable=tuple(name for name, m in data["models"].items() if m.get("decode_host", True)),
        guest_decodable=tuple(name for name, m in data["models"].items() if m.get("decode_guest", True)),
    )


#: x86_vendors.xml: CPUID vendor string -> libvirt's vendor name
X86_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon"}


def removed_features(cpu: Any) -> list[str]:
    """The removed features of a custom CPU's model that its <feature> list does not mention."""
    if cpu is None or cpu.mode not in (None, "custom") or cpu.model is None or not cpu.model.name:
        return []
    cmap = cpu_map()
    named = {cmap.canonical(f.name) for f in cpu.features if f.name}
    return [f for f in cmap.removed.get(cpu.model.name, ()) if f not in named]


@functools.cache
def host_features(path: str = CPUINFO) -> frozenset[str] | None:
    """This host's CPU features in CPU-map names; None when the kernel does not tell (no cpuinfo)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            cmap = cpu_map()
            return frozenset(cmap.canonical(f) for f in value.split())
    return None


def offered(props: dict[str, Any] | None) -> frozenset[str] | None:
    """The CPU-map features a QEMU host-CPU expansion turns on."""
    if props is None:
        return None
    cmap = cpu_map()
    return frozenset(cmap.canonical(k) for k, v in props.items() if v is True)


def resolve_optional(cpu: Any, host: frozenset[str] | None) -> dict[str, bool]:
    """Optional features of a custom CPU decided against the host: name -> on."""
    if host is None:
        return {}
    cmap = cpu_map()
    return {f.name: cmap.canonical(f.name) in host for f in cpu.features if f.policy == "optional" and f.name}


def check_guest_cpu(defn: Any, host: frozenset[str] | None) -> None:
    """libvirt's partial check of a custom guest CPU against `host` (see the module docstring): the
    host's own CPU for KVM, what TCG emulates for a qemu domain that asks for the check."""
    cpu = defn.cpu
    if host is None or cpu is None or cpu.mode not in (None, "custom"):
        return
    if cpu.check != "partial" or cpu.match not in (None, "exact", "strict", "minimum"):
        return
    model = cpu.model.name if cpu.model is not None else None
    cmap = cpu_map()
    if model is None or model not in cmap.models:
        return
    own = {cmap.canonical(f.name): f.policy for f in cpu.features if f.name}
    for name, policy in own.items():  # the first forbidden feature the host has, in the XML's order
        if policy == "forbid" and name in host:
            raise CpuError(ErrorCode.CPU_INCOMPATIBLE, f"Host CPU provides forbidden feature '{name}'")
    required = {f for f in cmap.models[model] if f not in own}
    required |= {name for name, policy in own.items() if policy in (None, "require")}
    missing = required - host
    if missing:
        raise CpuError(
            ErrorCode.CPU_INCOMPATIBLE,
            "Host CPU does not provide required features: " + ", ".join(cmap.sort(missing)),
        )
    # strict: the host may not offer more than the guest CPU names (the kernel's flags approximate
    # the CPUID bits libvirt reads, so the list can differ in a few leaves; the refusal does not)
    extra = (host & set(cmap.order)) - required - set(own)
    if cpu.match == "strict" and extra:
        raise CpuError(
            ErrorCode.CPU_INCOMPATIBLE,
            "Host CPU does not strictly match guest CPU: Extra features: " + ", ".join(cmap.sort(extra)),
        )


_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon"}


def host_model(props: dict[str, Any], blockers: dict[str, tuple[str, ...]]) -> tuple[str, list[tuple[str, bool]]]:
    """libvirt's host-model CPU for one accelerator: the CPU-map model closest to what QEMU offers.

    `props` is QEMU's full expansion of its host ("host" for KVM, "max" for TCG). Candidates are the
    map's decodable models of the host's vendor, in map order; one whose signature (family, model)
    matches the host wins over one that does not, otherwise the one needing fewer feature changes
    (the first on a tie). The result is that model plus `feature=on` for what the host adds and
    `feature=off` for what it lacks, each group in map order; the model's blockers (features QEMU's
    model of that name would enable but this accelerator cannot give) are turned off too.
    """
    cmap = cpu_map()
    known = set(cmap.order)
    host = {cmap.canonical(k) for k, v in props.items() if v is True} & known
    vendor = _VENDORS.get(str(props.get("vendor", "")))
    signature = (int(props.get("family", 0)), int(props.get("model", 0)))
    best: tuple[str, int, bool] | None = None
    for name in cmap.decodable:
        model_vendor = cmap.vendors.get(name)
        if model_vendor is not None and vendor is not None and model_vendor != vendor:
            continue
        feats = set(cmap.models[name])
        changes = len(host - feats) + len(feats - host)
        has_sig = signature in cmap.signatures.get(name, ())
        if best is None or (has_sig and not best[2]) or (has_sig == best[2] and changes < best[1]):
            best = (name, changes, has_sig)
    if best is None:
        raise CpuError(ErrorCode.OPERATION_FAILED, "Cannot find suitable CPU model for given data")
    name = best[0]
    feats = set(cmap.models[name])
    off = (feats - host) | ({cmap.canonical(b) for b in blockers.get(name, ())} & known)
    on = (host - feats) - off
    return name, [(f, True) for f in cmap.sort(on)] + [(f, False) for f in cmap.sort(off)]


@functools.cache
def host_tsc(path: str = CPUINFO) -> tuple[int, bool] | None:
    """(TSC frequency in Hz, whether KVM can scale a guest's TSC) of this host, None when unknown.

    The kernel's measured frequency is the first "cpu MHz" of cpuinfo (with a constant TSC that is
    the TSC rate); scaling is the AMD tsc_scale / Intel VMX tsc_scaling flag.
    """
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    mhz = None
    scaling = False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "cpu MHz" and mhz is None:
            mhz = value.strip()
        elif key in ("flags", "vmx flags") and ("tsc_scale" in value.split() or "tsc_scaling" in value.split()):
            scaling = True
    if mhz is None:
        return None
    whole, _, frac = mhz.partition(".")
    return int(whole) * 1_000_000 + int((frac + "000000")[:6]), scaling


def check_tsc(defn: Any, tsc: tuple[int, bool] | None) -> None:
    """A guest (KVM or TCG alike) asking for a TSC frequency the host cannot give (more than 250 ppm off and no
    TSC scaling) is refused before start, as libvirt's qemuProcessStartValidateTSC does."""
    if tsc is None or defn.clock is None:
        return
    wanted = next((t.frequency for t in defn.clock.timers if t.name == "tsc" and t.frequency), None)
    if not wanted:
        return
    host_hz, scaling = tsc
    tolerance = host_hz * 250 // 1_000_000
    low, high = host_hz - tolerance, host_hz + tolerance
    if low <= wanted <= high or scaling:
        return
    raise CpuError(
        ErrorCode.CONFIG_UNSUPPORTED,
        f"Requested TSC frequency {wanted} Hz is outside tolerance range ([{low}, {high}] Hz) around host "
        f"frequency {host_hz} Hz and TSC scaling is not supported by the host CPU",
    )
