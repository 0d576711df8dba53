"""Parse/format round trips of libvirt's own XML, and what is formatted only for live domains."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from lxml import etree

from virtstack.testing.conformance.domain import canonical
from virtstack.virt.xml.domain import DomainDef, format_domain, parse_domain


def _outputs(samples: Path) -> list[Path]:
    return sorted((samples / "libvirt-local").glob("*.out.xml"))


def test_libvirt_output_round_trips_unchanged(samples: Path) -> None:
    """What libvirt wrote is a fixed point: parse + format gives it back (whitespace/attr order aside)."""
    outs = _outputs(samples)
    assert len(outs) > 100
    for path in outs:
        text = path.read_text()
        again = format_domain(parse_domain(text), inactive=True, secure=True)
        assert canonical(again) == canonical(text), path.name


def test_format_is_libvirt_layout() -> None:
    xml = """<domain type="qemu"><name>a</name><memory unit="MiB">64</memory>
      <os><type>hvm</type></os><devices><disk type="file"><source file="/x"/><target dev="vda"/></disk></devices>
    </domain>"""
    out = format_domain(parse_domain(xml))
    lines = out.splitlines()
    assert lines[0] == "<domain type='qemu'>"
    assert lines[1] == "  <name>a</name>"
    assert "  <memory unit='KiB'>65536</memory>" in lines
    assert "  <currentMemory unit='KiB'>65536</currentMemory>" in lines
    assert "  <vcpu placement='static'>1</vcpu>" in lines
    assert "      <target dev='vda' bus='virtio'/>" in lines
    assert out.endswith("</domain>\n")


def test_fields_are_typed() -> None:
    d = parse_domain(
        "<domain type='kvm'><name>n</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>"
        "<memory unit='GiB'>1</memory><vcpu>3</vcpu><os><type machine='pc'>hvm</type>"
        "<kernel>/k</kernel><initrd>/i</initrd><cmdline>console=ttyS0</cmdline><boot dev='network'/></os>"
        "<devices/></domain>"
    )
    assert isinstance(d, DomainDef)
    assert d.type == "kvm" and d.name == "n"
    assert d.uuid == uuid.UUID("c7a5fdbd-edaf-9455-926a-d65c16db1809")
    assert d.memory_kib == 1024 * 1024 and d.current_memory_kib == 1024 * 1024
    assert d.vcpus == 3
    assert d.os is not None and d.os.kernel == "/k" and d.os.initrd == "/i" and d.os.cmdline == "console=ttyS0"
    assert d.os.boot_devs == ["network"]


def test_metadata_is_kept_verbatim() -> None:
    xml = (
        "<domain type='qemu'><name>m</name><memory>1024</memory><os><type>hvm</type></os>"
        "<metadata><app:foo xmlns:app='http://example.org/app'><app:bar x='1'>text</app:bar></app:foo></metadata>"
        "</domain>"
    )
    out = format_domain(parse_domain(xml))
    meta = etree.fromstring(out.encode()).find("metadata")
    assert meta is not None
    bar = meta.find("{http://example.org/app}foo/{http://example.org/app}bar")
    assert bar is not None and bar.text == "text" and bar.get("x") == "1"


def test_live_only_parts_drop_when_inactive() -> None:
    xml = (
        "<domain type='qemu' id='7'><name>l</name><memory>1024</memory><os><type>hvm</type></os><devices>"
        "<disk type='file' device='disk'><source file='/a' index='2'/><target dev='vda' bus='virtio'/>"
        "<alias name='virtio-disk0'/></disk>"
        "<serial type='pty' tty='/dev/pts/3'><target port='0'/><alias name='serial0'/></serial>"
        "</devices></domain>"
    )
    d = parse_domain(xml)
    live = format_domain(d)
    inactive = format_domain(d, inactive=True)
    assert "id='7'" in live and "<alias name='virtio-disk0'/>" in live and "tty='/dev/pts/3'" in live
    assert "index='2'" in live
    for token in ("id='7'", "<alias", "tty=", "index="):
        assert token not in inactive


@pytest.mark.parametrize("unit,value,kib", [("KiB", "10", 10), ("M", "1", 1024), ("b", "1", 1), ("GB", "1", 976563)])
def test_memory_units_scale_like_libvirt(unit: str, value: str, kib: int) -> None:
    d = parse_domain(
        f"<domain type='qemu'><name>u</name><memory unit='{unit}'>{value}</memory><os><type>hvm</type></os></domain>"
    )
    assert d.memory_kib == kib


def test_passwords_only_with_secure_flag() -> None:
    d = parse_domain(
        "<domain type='qemu'><name>p</name><memory>1024</memory><os><type>hvm</type></os><devices>"
        "<graphics type='vnc' port='5900' autoport='no' passwd='s3cret'/></devices></domain>"
    )
    assert "passwd='s3cret'" in format_domain(d, secure=True)
    assert "s3cret" not in format_domain(d)


def test_pty_path_is_runtime_state() -> None:
    d = parse_domain(
        "<domain type='qemu'><name>p</name><memory>1024</memory><os><type>hvm</type></os><devices>"
        "<serial type='pty'><source path='/dev/pts/4'/><target port='0'/></serial></devices></domain>"
    )
    assert "<source path='/dev/pts/4'/>" in format_domain(d)
    assert "/dev/pts/4" not in format_domain(d, inactive=True)


def test_empty_devices_is_an_open_close_pair() -> None:
    out = format_domain(
        parse_domain("<domain type='test'><name>e</name><memory>1024</memory><os><type>hvm</type></os></domain>")
    )
    assert "\n  <devices>\n  </devices>\n" in out
