"""Bad domain XML is rejected with libvirt's code, domain and wording, checked against the real libvirt parser."""

from __future__ import annotations

import pytest

from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError
from virtstack.virt.xml.domain import parse_domain

B = "<domain type='qemu'><name>a</name><memory>1024</memory><os><type>hvm</type></os>%s</domain>"
DISK = "<disk type='file' device='disk'>%s<source file='/x'/><target dev='vda'%s/>%s</disk>"

# Inputs libvirt's generic parser rejects; the real libvirt (test:///default) must agree with us on each.
BAD = [
    "<domain type='qemu'>\n  <name>a</name>\n  <memory>1</memory\n</domain>",
    B % "<devices><disk type='foo'/></devices>",
    "<domain type='qemu'><memory>1024</memory><os><type>hvm</type></os></domain>",
    "<domain type='qemux'><name>a</name><memory>1024</memory><os><type>hvm</type></os></domain>",
    B % "<devices><controller type='pci' index='-1'/></devices>",
    "<domain type='qemu'><name>a</name><memory>1024</memory><uuid>xyz</uuid><os><type>hvm</type></os></domain>",
    "<domain type='qemu'><name>a</name><memory>abc</memory><os><type>hvm</type></os></domain>",
    B % "<devices><disk type='file' device='disk'><source file='/x'/></disk></devices>",
    B % "<devices><interface type='user'><mac address='zz'/></interface></devices>",
    B % "<devices><interface type='user'><mac address='01:00:00:00:00:00'/></interface></devices>",
    B % "<on_reboot>foo</on_reboot>",
    "<domain><name>a</name><memory>1024</memory><os><type>hvm</type></os></domain>",
    "<domain type='qemu'><name>a</name><os><type>hvm</type></os></domain>",
    B % "<devices><disk type='file' device='floppyx'><source file='/x'/><target dev='fda'/></disk></devices>",
    B % "<devices><input type='joystick'/></devices>",
    B % "<devices><controller type='usb' model='bogus'/></devices>",
    B % "<clock offset='bogus'/>",
    B % "<cpu mode='bogus'/>",
    B % "<devices><graphics type='bogus'/></devices>",
    B % "<devices><video><model type='bogus'/></video></devices>",
    B % "<devices><memballoon model='bogus'/></devices>",
    "<domain type='qemu'><name>a</name><memory>1024</memory><vcpu>x</vcpu><os><type>hvm</type></os></domain>",
    "<domain type='qemu'><name>a</name><memory>1024</memory><os><type>foo</type></os></domain>",
    B % ("<devices>" + DISK % ("", " bus='bogus'", "") + "</devices>"),
    B % ("<devices>" + DISK % ("<driver name='qemu' type='bogus'/>", "", "") + "</devices>"),
    B % ("<devices>" + DISK % ("", "", "<address type='pci' slot='0x20'/>") + "</devices>"),
    B % "<devices><serial type='bogus'/></devices>",
    B % "<devices><interface type='bogus'/></devices>",
    B % "<features><hyperv mode='x'/></features>",
    "<notdomain/>",
    "<domain type='test'><name>x</name></domain>",
    # malformed documents: libxml2's message, the line and a pointer, as libvirt's catchXMLError prints
    "<domain type='test'><name>x</nam></domain>",
    "<domain>\n<name>a</name>\n",
    "<domain a='1' a='2'/>",
    "<domain>&foo;</domain>",
    "<domain",
    "",
    "<a></a><b/>",
    "junk",
]


def _ours(xml: str) -> tuple[int, int, str]:
    with pytest.raises(VirtError) as info:
        parse_domain(xml)
    e = info.value
    return e.code, e.domain, str(e)


@pytest.fixture(scope="module")
def libvirt_test_conn():  # type: ignore[no-untyped-def]
    libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")
    libvirt.registerErrorHandler(lambda *_: None, None)
    conn = libvirt.open("test:///default")
    yield conn
    conn.close()


@pytest.mark.parametrize("xml", BAD, ids=range(len(BAD)))
def test_rejection_matches_real_libvirt(xml: str, libvirt_test_conn) -> None:  # type: ignore[no-untyped-def]
    import libvirt

    with pytest.raises(libvirt.libvirtError) as info:
        libvirt_test_conn.defineXML(xml)
    real = info.value
    assert _ours(xml) == (real.get_error_code(), real.get_error_domain(), str(real))


def test_malformed_xml_reports_parser_detail() -> None:
    code, domain, msg = _ours("<domain type='qemu'>\n<name>a</nam>\n</domain>")
    assert (code, domain) == (ErrorCode.XML_DETAIL, ErrorDomain.DOMAIN)
    assert msg.startswith("(domain_definition):2: ")
    assert "Opening and ending tag mismatch" in msg


@pytest.mark.parametrize(
    "fragment,detail",
    [
        ("<frobnicate/>", "unsupported element 'frobnicate' in element 'domain'"),
        ("<devices><disk type='file' colour='red'/></devices>", "unsupported attribute 'colour' in element 'disk'"),
        ("<devices><sparkle/></devices>", "unsupported element 'sparkle' in element 'devices'"),
    ],
)
def test_unknown_input_is_an_error_not_dropped(fragment: str, detail: str) -> None:
    code, domain, msg = _ours(B % fragment)
    assert (code, domain) == (ErrorCode.CONFIG_UNSUPPORTED, ErrorDomain.DOMAIN)
    assert msg == f"unsupported configuration: {detail}"


def test_errors_never_leak_python_exceptions() -> None:
    for junk in ["", "   ", "<domain", "<?xml version='1.0'?>", "<domain type='qemu'><name>a</name>\x00</domain>"]:
        with pytest.raises(VirtError):
            parse_domain(junk)


def test_mutated_documents_fail_cleanly(qemu_caps) -> None:  # type: ignore[no-untyped-def]
    """Damaged but well-formed XML (dropped elements, junk values) gives a VirtError or a valid result."""
    import random
    from pathlib import Path

    from lxml import etree

    from virtstack.virt.drivers.qemu.defaults import apply_qemu_defaults
    from virtstack.virt.xml.domain import format_domain

    inputs = sorted((Path(__file__).with_name("data")).glob("*.in.xml"))
    assert inputs
    rng = random.Random(20261125)
    outcomes = {"ok": 0, "rejected": 0}
    for _ in range(150):
        root = etree.fromstring(rng.choice(inputs).read_bytes())
        elements = [e for e in root.iter() if isinstance(e.tag, str)]
        for _ in range(rng.randint(1, 3)):
            e = rng.choice(elements)
            if rng.random() < 0.3 and e.getparent() is not None:
                e.getparent().remove(e)
            elif e.attrib:
                e.set(rng.choice(list(e.attrib)), rng.choice(["", "-1", "0", "99999", "x", "0x1f", "pci", "1.5"]))
            else:
                e.text = rng.choice(["", "-5", "abc"])
        try:
            d = parse_domain(etree.tostring(root, encoding="unicode"))
            apply_qemu_defaults(d, qemu_caps)
            parse_domain(format_domain(d, inactive=True, secure=True))
            outcomes["ok"] += 1
        except VirtError:
            outcomes["rejected"] += 1
    assert outcomes["ok"] > 10 and outcomes["rejected"] > 10
