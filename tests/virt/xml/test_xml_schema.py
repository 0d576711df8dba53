"""Everything we emit validates against libvirt's RelaxNG schema, and the real libvirt parser accepts it."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from virtstack.testing.conformance.domain import run_one
from virtstack.testing.guest import domain_xml
from virtstack.virt.drivers.qemu.defaults import apply_qemu_defaults
from virtstack.virt.xml.domain import format_domain, parse_domain


def _emitted(samples: Path, caps: object) -> list[tuple[str, str]]:
    out = []
    for inp in sorted(samples.glob("*.in.xml")):
        if "-invalid" in inp.name:
            continue  # libvirt's own test data: deliberately outside the schema
        res = run_one(inp.read_text(), caps)
        if res.xml is not None:
            out.append((inp.name, res.xml))
    return out


def test_defined_xml_validates_against_domain_rng(samples: Path, qemu_caps, domain_schema) -> None:  # type: ignore[no-untyped-def]
    emitted = _emitted(samples, qemu_caps)
    assert len(emitted) > 100
    for name, xml in emitted:
        doc = etree.fromstring(xml.encode())
        assert domain_schema.validate(doc), f"{name}: {domain_schema.error_log.last_error}"


def test_real_libvirt_accepts_and_keeps_what_we_emit(samples: Path, qemu_caps) -> None:  # type: ignore[no-untyped-def]
    """libvirt's own parser (test driver) reads our output without error and keeps its devices."""
    libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")
    libvirt.registerErrorHandler(lambda *_: None, None)
    conn = libvirt.open("test:///default")
    try:
        for i, (name, xml) in enumerate(_emitted(samples, qemu_caps)[:40]):
            tree = etree.fromstring(xml.encode())
            tree.find("name").text = f"vs-xml-{i}"  # the test driver already has a domain called 'test'
            xml = etree.tostring(tree, encoding="unicode")
            dom = conn.defineXML(xml)
            back = etree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE).encode())
            ours = etree.fromstring(xml.encode())
            assert back.findtext("uuid") == ours.findtext("uuid"), name
            assert len(back.find("devices")) >= len(ours.find("devices")) - 2, name
            dom.undefine()
    finally:
        conn.close()


def test_guest_fixture_domain_round_trips(qemu_caps, domain_schema) -> None:  # type: ignore[no-untyped-def]
    """The lead's guest XML (kernel boot, pty serial with log) parses, gets defaults and stays valid."""
    from virtstack.testing.guest import Guest

    # no kernel download needed: the XML only names the files
    fake = Guest(kernel=Path("/boot/vmlinuz"), initrd=Path("/tmp/initrd.gz"), cmdline="console=ttyS0")
    xml = domain_xml("g1", fake, serial_log=Path("/tmp/g1.log"))
    d = parse_domain(xml)
    apply_qemu_defaults(d, qemu_caps)
    out = format_domain(d, inactive=True, secure=True)
    assert domain_schema.validate(etree.fromstring(out.encode())), domain_schema.error_log.last_error
    root = etree.fromstring(out.encode())
    assert root.findtext("os/kernel") == "/boot/vmlinuz"
    assert root.find("devices/serial/log").get("file") == "/tmp/g1.log"
    assert root.find("os/type").get("machine") == qemu_caps.canonical_machine("pc")


def test_defaults_are_idempotent_and_valid_on_argv_inputs(qemu_caps, domain_schema) -> None:  # type: ignore[no-untyped-def]
    """Over libvirt's qemuxml2argv inputs: what define writes stays valid, and defining it again changes nothing."""
    from virtstack.testing.conformance.domain import canonical
    from virtstack.virt.errors import VirtError

    folder = Path(__file__).resolve().parents[3].parent / "shared" / "libvirt" / "samples" / "qemu-argv"
    if not folder.is_dir():
        pytest.skip(f"sample folder {folder} is not beside the checkout")
    checked = 0
    for path in sorted(folder.glob("*.xml")):
        if "-invalid" in path.name:
            continue
        try:
            d = parse_domain(path.read_text())
            apply_qemu_defaults(d, qemu_caps)
        except VirtError:
            continue  # rejections are scored by the conformance runners
        first = format_domain(d, inactive=True, secure=True)
        assert domain_schema.validate(etree.fromstring(first.encode())), (path.name, domain_schema.error_log.last_error)
        again = parse_domain(first)
        apply_qemu_defaults(again, qemu_caps)
        assert canonical(format_domain(again, inactive=True, secure=True)) == canonical(first), path.name
        checked += 1
    assert checked > 150
