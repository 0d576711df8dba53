"""`vsh domxml-to-native`: without a daemon (our command builder) it must print what real libvirtd prints."""

from __future__ import annotations

from pathlib import Path

import pytest
from vshdiff import explain, virsh, vsh

from virtstack.testing.guest import Guest, domain_xml
from virtstack.testing.servers import PrivateLibvirtd

UUID = "3b9f5d0e-1d6a-4a53-9f62-0e4c1c2b7a55"
TEST_TYPE = "<domain type='test'><name>t</name><memory>65536</memory><os><type>hvm</type></os></domain>\n"


@pytest.fixture
def files(tmp_path: Path, guest: Guest) -> Path:
    (tmp_path / "guest.xml").write_text(domain_xml("g1", guest, uuid=UUID))
    (tmp_path / "test-type.xml").write_text(TEST_TYPE)
    return tmp_path


@pytest.mark.parametrize(
    ("fmt", "name"),
    [("qemu-argv", "guest.xml"), ("bogus", "guest.xml"), ("qemu-argv", "test-type.xml"), ("qemu-argv", "missing.xml")],
)
@pytest.mark.parametrize("how", [[], ["--local", "-c", "qemu:///nowhere"]], ids=["no-uri", "local-flag"])
def test_local_matches_real_libvirtd(
    libvirtd: PrivateLibvirtd, files: Path, fmt: str, name: str, how: list[str]
) -> None:
    args = ["domxml-to-native", fmt, str(files / name)]
    expected = virsh(["-c", libvirtd.uri("qemu:///system"), *args])
    got = vsh([*how, *args])
    assert expected == got, explain(expected, got)


def test_remote_goes_through_the_daemon(libvirtd: PrivateLibvirtd, files: Path) -> None:
    uri = libvirtd.uri("qemu:///system")
    args = ["-c", uri, "domxml-to-native", "qemu-argv", "--xml", str(files / "guest.xml")]
    expected, got = virsh(args), vsh(args)
    assert expected == got, explain(expected, got)
    assert expected.status == 0 and f"-uuid {UUID}" in expected.stdout
