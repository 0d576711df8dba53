"""virsh domcapabilities through virtstackd's qemu:///system, compared with the real libvirtd 9.0 on the
same host, for the same arguments: element tree, attribute names, enum values, supported flags, machine
names, vCPU limits and CPU model usability; errors compared in full (code, domain, message).

Values we cannot match, and why (both are host-CPU facts, compared by shape only):
- the host-model CPU's <feature> list: libvirt builds it from the host's own CPUID (it keeps
  `invtsc`, marked non-migratable in its CPU map) and, for TCG, from its own expansion of QEMU's "max"
  CPU, while our probe asks QEMU for the migratable expansion (no invtsc; "monitor" and AMD's "topoext"
  come out differently under TCG; the i686 binary's MSR features too). Model name and vendor match.
- an emulator that is not QEMU (--emulatorbin /bin/true): libvirt fails reading the pidfile of its
  probe process under a random directory (VIR_ERR_SYSTEM_ERROR); our probe fails as "QEMU did not open
  its monitor" (VIR_ERR_INTERNAL_ERROR). Only the failure and the QEMU error domain are compared.
Firmware: this host has SeaBIOS (/usr/share/seabios) but no OVMF and no QEMU firmware descriptors
(/usr/share/qemu/firmware, /etc/qemu/firmware), so both list no firmware kinds and no loader paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from lxml import etree

from virtstack.testing.servers import PrivateLibvirtd

if TYPE_CHECKING:  # the fixture comes from conftest.py
    from tests.virt.daemon.conftest import RunningDaemon

libvirt = pytest.importorskip("libvirt", reason="libvirt-python (python3-libvirt) is not importable")

REQUESTS = [
    [],
    ["--virttype", "qemu", "--machine", "q35"],
    ["--machine", "pc"],
    ["--arch", "x86_64"],
    ["--virttype", "kvm"],  # libvirtd offers kvm whenever /dev/kvm answers, slow or not
    ["--virttype", "qemu", "--machine", "pc-q35-7.2"],
    ["--emulatorbin", "/usr/bin/qemu-system-x86_64"],
    ["--arch", "i686"],  # another binary: qemu-system-i386
    ["--emulatorbin", "/usr/bin/qemu-system-x86_64", "--arch", "i686"],
    ["--emulatorbin", "/usr/bin/qemu-system-i386", "--arch", "i686", "--virttype", "kvm"],
]
FAILING = [
    ["--machine", "nosuch"],
    ["--arch", "foo"],
    ["--arch", "armv7l"],  # a known arch without a qemu-system binary here
    ["--emulatorbin", "/nonexistent/qemu"],
    ["--virttype", "xen"],
    ["--virttype", "foo"],
]
#: (emulatorbin, arch, machine, virttype, flags) through libvirt-python, for codes and unknown flags
PYTHON_CALLS: list[tuple[str | None, str | None, str | None, str | None, int]] = [
    (None, None, None, None, 1),
    (None, None, None, None, 0x40000000),
    (None, None, "nosuch", "qemu", 0),
    (None, "armv7l", None, None, 0),
    ("/nonexistent/qemu", None, None, None, 0),
    (None, None, None, "xen", 0),
    (None, "foo", None, None, 0),
    ("/usr/bin/qemu-system-x86_64", "i686", None, None, 0),  # x86_64 serves i686 too
    ("/usr/bin/qemu-system-x86_64", "aarch64", None, None, 0),
    ("/usr/bin/qemu-system-i386", "x86_64", None, None, 0),
    ("/usr/bin/qemu-system-i386", None, None, None, 0),  # the arch defaults to the host's
]


def _shape(el: Any, host_features: bool = False) -> Any:
    """Tag, attributes and text, recursively; host-model features reduced to their attribute names."""
    if host_features and el.tag == "feature":
        return ("feature", sorted(el.attrib.keys()), el.get("policy"))
    in_host_model = host_features or (el.tag == "mode" and el.get("name") == "host-model")
    children = [_shape(c, in_host_model) for c in el]
    if in_host_model and el.tag == "mode":
        children = [c for i, c in enumerate(children) if c[0] != "feature" or children[i - 1] != c]
    return (el.tag, dict(el.attrib), (el.text or "").strip(), children)


def test_domcapabilities_match_libvirtd(daemon: RunningDaemon, libvirtd: PrivateLibvirtd) -> None:
    ours_uri, oracle_uri = daemon.uri("qemu", "/system"), libvirtd.uri("qemu:///system")
    for args in REQUESTS:
        theirs = daemon.virsh("domcapabilities", *args, uri=oracle_uri)
        ours = daemon.virsh("domcapabilities", *args, uri=ours_uri)
        assert theirs.returncode == 0, theirs.stderr
        assert (ours.returncode, ours.stderr) == (0, ""), (args, ours.stderr)
        mine, real = etree.fromstring(ours.stdout), etree.fromstring(theirs.stdout)
        assert _shape(mine) == _shape(real), args
        # libvirt's layout: single-quoted attributes, two-space indent, same line count outside host-model
        assert ours.stdout.splitlines()[:30] == theirs.stdout.splitlines()[:30], args


def test_domcapabilities_errors_match_libvirtd(daemon: RunningDaemon, libvirtd: PrivateLibvirtd) -> None:
    ours_uri, oracle_uri = daemon.uri("qemu", "/system"), libvirtd.uri("qemu:///system")
    for args in FAILING:
        theirs = daemon.virsh("domcapabilities", *args, uri=oracle_uri)
        ours = daemon.virsh("domcapabilities", *args, uri=ours_uri)
        assert theirs.returncode == 1
        assert (ours.returncode, ours.stdout, ours.stderr) == (1, theirs.stdout, theirs.stderr), args
    results = []
    for uri in (ours_uri, oracle_uri):
        conn = libvirt.open(uri)
        seen: list[object] = []
        for call in PYTHON_CALLS:
            try:
                conn.getDomainCapabilities(*call)
                seen.append((call, "ok"))
            except libvirt.libvirtError as e:
                seen.append((call, e.get_error_code(), e.get_error_domain(), e.get_error_message()))
        bad = daemon.virsh("domcapabilities", "--emulatorbin", "/bin/true", uri=uri)
        seen.append(("not qemu", bad.returncode, "error: failed to get emulator capabilities" in bad.stderr))
        conn.close()
        results.append(seen)
    assert results[0] == results[1]
