"""Turning XML text into an lxml tree with libvirt's parser error wording (VIR_ERR_XML_DETAIL)."""

from __future__ import annotations

from lxml import etree

from virtstack.virt.errors import ErrorCode
from virtstack.virt.xml.base import Error


def parse_xml(xml: str, url: str) -> etree._Element:
    """Parse without network access or entity expansion; report errors like libvirt's catchXMLError."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True, huge_tree=False)
    try:
        root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml, parser)
    except etree.XMLSyntaxError as e:
        line = e.lineno or 0
        col = e.offset or 0
        msg = (e.msg or "").split(", line ")[0]
        lines = xml.splitlines() if isinstance(xml, str) else []
        ctx = lines[line - 1] if 0 < line <= len(lines) else "(null)"  # libvirt prints C's "(null)" at EOF
        pointer = "-" * max(col, 0) + "^"
        raise Error(ErrorCode.XML_DETAIL, f"{url}:{line}: {msg}\n{ctx}\n{pointer}") from None
    if root is None:
        raise Error(ErrorCode.XML_ERROR, "failed to parse xml document")
    return root
