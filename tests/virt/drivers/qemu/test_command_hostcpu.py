"""The host-CPU side of custom CPUs: libvirt's CPU map, the start check, host-model decoding, TSC."""

from __future__ import annotations

from pathlib import Path

import pytest

from virtstack.virt.drivers.qemu.command import hostcpu
from virtstack.virt.errors import VirtError
from virtstack.virt.xml.domain import parse_domain


def _domain(cpu: str, vtype: str = "kvm", clock: str = "") -> object:
    return parse_domain(
        f"<domain type='{vtype}'><name>c</name><memory>65536</memory>"
        f"<os><type arch='x86_64'>hvm</type></os>{cpu}{clock}</domain>"
    )


def _partial(defn: object) -> object:
    defn.cpu.check = "partial"  # type: ignore[attr-defined]
    return defn


def test_cpu_map_holds_libvirt_models_and_feature_order() -> None:
    cmap = hostcpu.cpu_map()
    assert "monitor" in cmap.models["core2duo"]
    assert "monitor" in cmap.removed["EPYC"] and "monitor" not in cmap.models["EPYC"]
    assert cmap.canonical("pclmulqdq") == "pclmuldq" and cmap.canonical("sse4_1") == "sse4.1"
    assert cmap.sort({"xtpr", "ds", "monitor"}) == ["ds", "monitor", "xtpr"]  # CPUID order, not alphabetic


def test_missing_model_and_required_features_are_listed_in_map_order() -> None:
    host = frozenset(hostcpu.cpu_map().models["core2duo"]) - {"monitor"}
    defn = _partial(_domain("<cpu match='exact'><model>core2duo</model><feature name='xtpr'/>"
                            "<feature policy='force' name='3dnowext'/><feature policy='disable' name='vme'/></cpu>"))
    with pytest.raises(VirtError) as info:
        hostcpu.check_guest_cpu(defn, host)
    assert info.value.message == (
        "the CPU is incompatible with host CPU: Host CPU does not provide required features: monitor, xtpr"
    )


def test_forbidden_feature_on_host_is_named_alone() -> None:
    host = frozenset(hostcpu.cpu_map().models["Nehalem"])
    defn = _partial(_domain("<cpu match='exact'><model>Nehalem</model><feature policy='forbid' name='sse2'/></cpu>"))
    with pytest.raises(VirtError, match="Host CPU provides forbidden feature 'sse2'"):
        hostcpu.check_guest_cpu(defn, host)


def test_no_check_without_host_data_or_with_check_none() -> None:
    defn = _domain("<cpu match='exact' check='none'><model>core2duo</model></cpu>")
    hostcpu.check_guest_cpu(defn, frozenset())
    hostcpu.check_guest_cpu(_partial(_domain("<cpu><model>core2duo</model></cpu>")), None)


def test_host_model_prefers_the_model_with_the_hosts_signature() -> None:
    cmap = hostcpu.cpu_map()
    feats = set(cmap.models["EPYC-Milan"]) - {"pni"} | {"hypervisor"}
    props = {f: True for f in feats} | {"vendor": "AuthenticAMD", "family": 25, "model": 1}
    name, changes = hostcpu.host_model(props, {"EPYC-Milan": ("svm",)})
    assert name == "EPYC-Milan"
    assert ("hypervisor", True) in changes and ("pni", False) in changes and ("svm", False) in changes
    assert changes.index(("hypervisor", True)) < changes.index(("pni", False))  # additions first


def test_host_tsc_and_the_tolerance_check(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\ncpu MHz\t\t: 2445.406\nflags\t\t: fpu tsc constant_tsc\n")
    tsc = hostcpu.host_tsc.__wrapped__(str(info))  # type: ignore[attr-defined]
    assert tsc == (2445406000, False)
    ok = _domain("", clock="<clock offset='utc'><timer name='tsc' frequency='2445406500'/></clock>")
    hostcpu.check_tsc(ok, tsc)
    far = _domain("", clock="<clock offset='utc'><timer name='tsc' frequency='4567890000'/></clock>")
    with pytest.raises(VirtError, match=r"outside tolerance range \(\[2444794649, 2446017351\] Hz\)"):
        hostcpu.check_tsc(far, tsc)
    hostcpu.check_tsc(far, (2445406000, True))  # TSC scaling makes any rate possible
