"""The text writer (formatting without a tree) against the element path, and libvirt's escaping."""

from __future__ import annotations

from pathlib import Path

import pytest

from virtstack.virt.errors import VirtError
from virtstack.virt.xml.base import Ctx, NotPlain, escape, indent
from virtstack.virt.xml.domain import format_domain, parse_domain

CONTEXTS = [Ctx(inactive=i, secure=s) for i in (False, True) for s in (False, True)]


def test_writer_matches_element_path_on_every_sample(samples: Path) -> None:
    """Two formatters, one layout: whatever libvirt's samples hold, both give the same text."""
    compared = 0
    for path in sorted(samples.rglob("*.xml")):
        try:
            defn = parse_domain(path.read_text())
        except VirtError:
            continue  # samples of invalid input
        if defn.metadata is not None:
            continue  # libxml2's quoting inside <metadata>: see the test below
        for ctx in CONTEXTS:
            out: list[str] = []
            try:
                defn.write(ctx, None, "", out)
            except NotPlain:
                continue  # namespaced content: formatted by lxml only
            el = defn.to_element(ctx)
            assert el is not None
            assert "".join(out) == indent(el), (path.name, ctx)
            compared += 1
    assert compared > 400


def test_escaping_is_libvirts() -> None:
    """virBufferEscapeString: the five markup characters as entities, in text and attributes alike;
    tab, newline and carriage return kept; other control characters dropped."""
    assert escape("don't \"quote\" <&>") == "don&apos;t &quot;quote&quot; &lt;&amp;&gt;"
    assert escape("a\tb\nc\rd\x01e\x1f") == "a\tb\nc\rde"
    assert escape("plain") == "plain"


def test_description_escaped_as_libvirt_writes_it(samples: Path) -> None:
    expected = (samples / "libvirt-local" / "disk-cdrom-bus-other.out.xml").read_text()
    ours = format_domain(parse_domain(expected), inactive=True, secure=True)
    line = next(x for x in expected.splitlines() if "<description>" in x)
    assert "don&apos;t" in line
    assert line in ours.splitlines()


def test_attribute_values_escaped() -> None:
    xml = """<domain type='qemu'><name>a</name><memory>1024</memory><os><type>hvm</type></os>
      <devices><disk type='file'><source file="/x/it's &lt;here&gt;"/><target dev='vda'/></disk></devices>
    </domain>"""
    out = format_domain(parse_domain(xml))
    assert "<source file='/x/it&apos;s &lt;here&gt;'/>" in out


def test_metadata_written_as_libvirt_dumps_it() -> None:
    """libvirt writes <metadata> through libxml2: indented with the rest, attributes double-quoted."""
    xml = """<domain type='qemu'><name>a</name><memory>1024</memory>
      <metadata><app:x xmlns:app='http://example.org/app'><app:y k='v'/></app:x></metadata>
      <os><type>hvm</type></os></domain>"""
    lines = format_domain(parse_domain(xml)).splitlines()
    at = lines.index("  <metadata>")
    assert lines[at + 1 : at + 5] == [
        '    <app:x xmlns:app="http://example.org/app">',
        '      <app:y k="v"/>',
        "    </app:x>",
        "  </metadata>",
    ]


@pytest.mark.parametrize("inactive", [False, True])
def test_qemu_namespace_declared_after_type(inactive: bool) -> None:
    """<qemu:commandline> takes the lxml path; xmlns:qemu still comes where libvirt writes it."""
    xml = """<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
      <name>a</name><memory>1024</memory><os><type>hvm</type></os>
      <qemu:commandline><qemu:arg value='-no-reboot'/></qemu:commandline>
    </domain>"""
    out = format_domain(parse_domain(xml), inactive=inactive)
    assert out.startswith("<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n")
    assert "    <qemu:arg value='-no-reboot'/>\n" in out
