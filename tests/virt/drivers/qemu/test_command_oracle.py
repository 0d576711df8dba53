"""`xml_to_native` against answers the real libvirtd 9.0 gave for inputs no other scoreboard uses.

Each `data/libvirt_argv/NAME.xml` comes with `NAME.args` (what `virsh domxml-to-native qemu-argv`
printed) or `NAME.err` (the error it reported); see data/libvirt_argv/README.md for how they were made.
Compared like the local conformance scoreboard: environment prefix dropped, fd numbers blanked; an
error must be the same message word for word. The answers depend on this kind of host (its QEMU 7.2
binary, its CPU, no firmware descriptors, no DRM node), like the `libvirt-local` samples.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from virtstack.testing.conformance.qemu_argv import normalize, parse_args_file
from virtstack.virt.drivers.qemu.capabilities import probe_qemu_caps
from virtstack.virt.drivers.qemu.command import xml_to_native
from virtstack.virt.drivers.qemu.config import QemuDriverConfig
from virtstack.virt.errors import VirtError

DATA = Path(__file__).parent / "data" / "libvirt_argv"
CASES = sorted(p.stem for p in DATA.glob("*.xml"))
QEMU = "/usr/bin/qemu-system-x86_64"

pytestmark = pytest.mark.skipif(not os.access(QEMU, os.X_OK), reason=f"{QEMU} is not installed")


@pytest.fixture(scope="module")
def caps():  # type: ignore[no-untyped-def]
    return probe_qemu_caps(QEMU)


def test_golden_set_is_present() -> None:
    assert len(CASES) >= 100, "the recorded libvirt answers are missing"
    for name in CASES:
        assert (DATA / f"{name}.args").exists() != (DATA / f"{name}.err").exists(), name


@pytest.mark.parametrize("name", CASES)
def test_matches_libvirt(name: str, caps) -> None:  # type: ignore[no-untyped-def]
    xml = (DATA / f"{name}.xml").read_text()
    args = DATA / f"{name}.args"
    err = DATA / f"{name}.err"
    if err.exists():
        expected = err.read_text().strip().splitlines()[0].removeprefix("error: ")
        with pytest.raises(VirtError) as info:
            xml_to_native(xml, caps, QemuDriverConfig.system())
        assert info.value.message == expected
        return
    cmd = xml_to_native(xml, caps, QemuDriverConfig.system())
    assert normalize(cmd.argv) == normalize(parse_args_file(args.read_text()))
