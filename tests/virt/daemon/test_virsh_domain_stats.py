"""vcpuinfo, vcpucount, vcpupin, emulatorpin, dommemstat, domcontrol and domjobinfo through the real virsh
and libvirt-python against a private virtstackd running real guests, compared with the real libvirtd 9.0
(numbers that vary, such as CPU time or RSS, by shape; errors by code, domain and message)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from virtstack.testing.guest import build_guest, domain_xml
from virtstack.testing.servers import side_by_side, unavailable_reason

libvirt = pytest.importorskip("libvirt")

pytestmark = [pytest.mark.qemu, pytest.mark.slow, pytest.mark.timeout(180)]

VIRSH = shutil.which("virsh")
#: the last host CPU this test may use: the pinned guest's vCPU 1 goes there
LAST_CPU = max(os.sched_getaffinity(0))

VIRSH_COMMANDS = [
    f"{cmd} {dom}".split() + extra
    for dom in ("run", "off")
    for cmd, extras in (
        ("vcpuinfo", [[], ["--pretty"]]),
        ("vcpucount", [[], ["--maximum"], ["--active"], ["--live"], ["--config"], ["--current"], ["--guest"],
                       ["--live", "--maximum"]]),
        ("vcpupin", [[], ["--config"], ["--live"]]),
        ("emulatorpin", [[], ["--live"], ["--config"]]),
        ("dommemstat", [[]]),
        ("domcontrol", [[]]),
        ("domjobinfo", [[], ["--completed"]]),
    )
    for extra in extras
] + [["dommemstat", "pinned"], ["vcpupin", "pinned"], ["emulatorpin", "pinned"]]  # fmt: skip


def _pinned_xml(guest: Any) -> str:
    """A transient guest with a virtio balloon, vCPU 1 and the emulator pinned."""
    return (
        domain_xml("pinned", guest, vcpus=2)
        .replace("<memballoon model='none'/>", "<memballoon model='virtio'/>")
        .replace(
            "<vcpu>2</vcpu>",
            f"<vcpu>2</vcpu><cputune><vcpupin vcpu='1' cpuset='{LAST_CPU}'/><emulatorpin cpuset='0'/></cputune>",
        )
    )


def _boot(uri: str, guest: Any) -> None:
    """Define "off" and "run" (started), create the transient "pinned"; guests share the host's CPUs."""
    conn = libvirt.open(uri)
    try:
        conn.defineXML(domain_xml("off", guest, vcpus=2))
        conn.defineXML(domain_xml("run", guest, vcpus=2)).create()
        conn.createXML(_pinned_xml(guest), 0)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def uris() -> Iterator[dict[str, str]]:
    """qemu:///system URIs of our daemon ("ours") and, where it can run, libvirtd ("libvirtd")."""
    guest = build_guest()
    with side_by_side(lambda uri: _boot(uri, guest)) as found:
        yield found


def _oracle(uris: dict[str, str]) -> str:
    if "libvirtd" not in uris:
        pytest.skip(f"no private libvirtd: {unavailable_reason()}")
    return uris["libvirtd"]


# -- virsh ------------------------------------------------------------------------------------------
def _virsh(uri: str, args: list[str]) -> tuple[int, str, str]:
    if VIRSH is None:
        pytest.skip("virsh (libvirt-clients) is not installed")
    done = subprocess.run([VIRSH, "-c", uri, *args], capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def _shape(text: str) -> str:
    """Output with every number made N: CPU times, RSS and last host CPUs vary between runs."""
    return re.sub(r"\d+(\.\d+)?", "N", text)


def test_virsh_layout_and_errors_match_libvirtd(uris: dict[str, str]) -> None:
    oracle = _oracle(uris)
    for args in VIRSH_COMMANDS:
        ours, theirs = _virsh(uris["ours"], args), _virsh(oracle, args)
        assert (ours[0], _shape(ours[1]), ours[2]) == (theirs[0], _shape(theirs[1]), theirs[2]), args


def test_virsh_reports_live_vcpus_and_memory(uris: dict[str, str]) -> None:
    """Without an oracle: the layouts libvirt 9.0 prints, values from the running QEMU."""
    rc, out, _ = _virsh(uris["ours"], ["vcpuinfo", "run"])
    assert rc == 0
    labels = [line.split(":")[0] for line in out.splitlines() if line]
    # virsh leaves out "CPU time" for a vCPU that has not run yet (an idle guest's second vCPU, say)
    assert [x for x in labels if x != "CPU time"] == ["VCPU", "CPU", "State", "CPU Affinity"] * 2
    assert labels.count("CPU time") >= 1
    assert _virsh(uris["ours"], ["vcpucount", "run"])[1].split() == [
        "maximum", "config", "2", "maximum", "live", "2", "current", "config", "2", "current", "live", "2",
    ]  # fmt: skip
    rc, out, _ = _virsh(uris["ours"], ["dommemstat", "run"])
    assert rc == 0 and re.fullmatch(r"rss \d+\n\n", out)
    rc, out, _ = _virsh(uris["ours"], ["dommemstat", "pinned"])
    assert [line.split()[0] for line in out.splitlines() if line] == ["actual", "last_update", "rss"]
    assert _virsh(uris["ours"], ["domcontrol", "run"])[1] == "ok\n\n"
    assert _virsh(uris["ours"], ["domjobinfo", "off"]) == (
        1, "\n", "error: Requested operation is not valid: domain is not running\n"
    )  # fmt: skip


# -- libvirt-python -----------------------------------------------------------------------------------
def _call(call: Callable[..., Any], *args: Any) -> Any:
    try:
        return call(*args)
    except libvirt.libvirtError as e:
        return ("error", e.get_error_code(), e.get_error_domain(), str(e))


def _stat_names(dom: Any) -> list[str]:
    return sorted(dom.memoryStats())


def _observe(uri: str) -> list[Any]:
    """Every query and flag combination; values that vary between runs reduced to their shape."""
    conn = libvirt.open(uri)
    seen: list[Any] = []
    try:
        for name in ("run", "off", "pinned"):
            dom = conn.lookupByName(name)

            def vcpus(dom: Any = dom) -> Any:
                info, maps = dom.vcpus()
                return [(n, state, time >= 0, cpu in range(os.cpu_count() or 1)) for n, state, time, cpu in info], maps

            seen.append((name, "vcpus", _call(vcpus)))  # the pinned guest's maps: pins applied at start
            seen.append((name, "maxVcpus", _call(dom.maxVcpus)))
            for flags in [*range(0x20), 0x40]:
                seen.append((name, "vcpusFlags", flags, _call(dom.vcpusFlags, flags)))
            for flags in range(5):
                seen.append((name, "vcpuPinInfo", flags, _call(dom.vcpuPinInfo, flags)))
                seen.append((name, "emulatorPinInfo", flags, _call(dom.emulatorPinInfo, flags)))
                seen.append((name, "jobStats", flags, _call(dom.jobStats, flags)))
            seen.append((name, "memoryStats", _call(_stat_names, dom)))
            for flags in range(3):
                seen.append((name, "controlInfo", flags, _call(dom.controlInfo, flags)))
            seen.append((name, "jobInfo", _call(dom.jobInfo)))
    finally:
        conn.close()
    return seen


def test_libvirt_python_sees_what_libvirtd_reports(uris: dict[str, str]) -> None:
    oracle = _oracle(uris)
    ours, theirs = _observe(uris["ours"]), _observe(oracle)
    assert len(ours) == len(theirs)
    for mine, expected in zip(ours, theirs, strict=True):
        assert mine == expected


def _qemu_pid(uri: str) -> int:
    """The "run" guest's QEMU: its command line names the daemon's private state directory."""
    state = Path(uri.split("socket=")[1]).parent
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"guest=run,debug-threads=on" in cmdline and str(state).encode() in b" ".join(cmdline):
                return int(entry.name)
    raise AssertionError("no QEMU for guest run")


def test_values_come_from_the_qemu_process(uris: dict[str, str]) -> None:
    """vCPU threads (named "CPU n/TCG" by QEMU) give the affinity and bound the CPU time; RSS is QEMU's."""
    pid = _qemu_pid(uris["ours"])
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        comm = (task / "comm").read_text().strip()
        if comm.startswith("CPU "):
            threads[int(comm.split()[1].split("/")[0])] = int(task.name)
    conn = libvirt.open(uris["ours"])
    try:
        dom = conn.lookupByName("run")
        info, maps = dom.vcpus()
        stats = dom.memoryStats()
    finally:
        conn.close()
    assert [n for n, *_ in info] == sorted(threads) == [0, 1]
    for (n, _state, cpu_ns, _cpu), cpumap in zip(info, maps, strict=True):
        allowed = os.sched_getaffinity(threads[n])
        assert {i for i, on in enumerate(cpumap) if on} == allowed
        fields = Path(f"/proc/{pid}/task/{threads[n]}/stat").read_text().rsplit(")", 1)[1].split()
        ticks_now = int(fields[11]) + int(fields[12])
        assert 0 <= cpu_ns <= ticks_now * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    status = Path(f"/proc/{pid}/status").read_text()
    vm_rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    assert abs(stats["rss"] - vm_rss) < vm_rss // 5
