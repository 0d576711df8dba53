"""Declarative XML models: each field declared once (kind, XML name, converter) serves parse and format."""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, cast

from lxml import etree

from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError, error_factory
from virtstack.virt.xml import codegen

Error = error_factory(ErrorDomain.DOMAIN)
XMLError = error_factory(ErrorDomain.XML)

M = TypeVar("M", bound="XMLModel")


@dataclass(frozen=True)
class Conv:
    """A value converter: text -> python (raising ValueError on bad input) and python -> text."""

    parse: Callable[[str], Any]
    format: Callable[[Any], str]
    expected: str = ""  # extra wording after libvirt's "Invalid value ..." message
    error: Callable[[str], VirtError] | None = None  # libvirt's own wording for this value, when it has one


# What C's strtoll/strtoull accept and libvirt keeps: leading blanks, a sign, ASCII digits, nothing after.
_INT_RE = re.compile(r"[ \t\n\r\f\v]*([+-]?)(0[xX][0-9a-fA-F]+|[0-9]+)\Z")
_DECIMAL_RE = re.compile(r"[ \t\n\r\f\v]*\+?([0-9]+)\Z")
UINT64_MAX = 2**64 - 1
LLONG_MAX = 2**63 - 1


def _parse_int(s: str) -> int:
    match = _INT_RE.match(s)
    if match is None:
        raise ValueError(s)
    sign, digits = match.groups()
    magnitude = int(digits, 16) if digits[:2] in ("0x", "0X") else int(digits)
    if magnitude > UINT64_MAX:
        raise ValueError(s)
    return -magnitude if sign == "-" else magnitude


def parse_decimal(s: str, maximum: int = UINT64_MAX) -> int:
    """A non-negative decimal as libvirt's virStrToLong_ullp reads it (no hex, no minus, no overflow)."""
    match = _DECIMAL_RE.match(s)
    if match is None or int(match.group(1)) > maximum:
        raise ValueError(s)
    return int(match.group(1))


def _parse_uint(s: str) -> int:
    v = _parse_int(s)
    if v < 0:
        raise ValueError(s)
    return v


STR = Conv(str, str)
INT = Conv(_parse_int, str)
UINT = Conv(_parse_uint, str, " Expected non-negative integer value")


def _yesno(s: str) -> bool:
    if s not in ("yes", "no"):
        raise ValueError(s)
    return s == "yes"


def _onoff(s: str) -> bool:
    if s not in ("on", "off"):
        raise ValueError(s)
    return s == "on"


YESNO = Conv(_yesno, lambda b: "yes" if b else "no")
ONOFF = Conv(_onoff, lambda b: "on" if b else "off")


def enum(*values: str, error: str | None = None, code: int = ErrorCode.CONFIG_UNSUPPORTED) -> Conv:
    """A converter accepting only libvirt's spelling of an enumeration.

    `error` is libvirt's message template for a bad value ('{}' is the value); without it the generic
    virXMLPropEnum wording is used.
    """

    def parse(s: str) -> str:
        if s not in values:
            raise ValueError(s)
        return s

    if error is None:
        return Conv(parse, str)
    template = error
    return Conv(parse, str, error=lambda v: Error(code, template.format(v)))


def hexfmt(width: int) -> Conv:
    """Integers written in hex with a fixed width, as libvirt writes PCI address parts."""
    return Conv(_parse_uint, lambda v: f"0x{v:0{width}x}", " Expected non-negative value")


@dataclass(frozen=True)
class Spec:
    """How one dataclass field maps to XML.

    kind: attr (attribute of this element), text (this element's text), child (one sub-model), children
    (list of sub-models), ctext / ctexts (<tag>text</tag>, once or repeated), cattr (<tag attr='v'/>),
    flag (<tag/> present), raw (element kept verbatim), scaled (<tag unit='..'>n</tag> kept in KiB),
    xattr (one more attribute on a sub-element another field writes).
    """

    kind: str
    name: str = ""
    conv: Conv = STR
    model: Any = None
    sub: str = ""
    live: bool = False  # runtime-only: formatted only for live XML
    required: bool = False
    secret: bool = False  # formatted only with the secure flag (passwords)
    only_one: str = ""  # child: libvirt's INTERNAL_ERROR message when the element appears more than once
    strip: bool = True  # ctext: surrounding whitespace dropped (libvirt keeps it for a few, e.g. disk <serial>)


def _meta(spec: Spec, default: Any = None, factory: Any = None) -> Any:
    if factory is not None:
        return field(default_factory=factory, metadata={"xml": spec})
    return field(default=default, metadata={"xml": spec})


def attr(
    name: str,
    conv: Conv = STR,
    *,
    default: Any = None,
    live: bool = False,
    required: bool = False,
    secret: bool = False,
) -> Any:
    """An attribute of this element."""
    return _meta(Spec("attr", name, conv, live=live, required=required, secret=secret), default)


def text(conv: Conv = STR, default: Any = None) -> Any:
    """This element's own text content."""
    return _meta(Spec("text", "", conv), default)


def child(tag: str, model: Any, *, live: bool = False, only_one: str = "") -> Any:
    """A single sub-element described by another model (`only_one`: refuse repeats with this message)."""
    return _meta(Spec("child", tag, model=model, live=live, only_one=only_one), None)


def children(tag: str, model: Any) -> Any:
    """Repeated sub-elements of one tag, in document order."""
    return _meta(Spec("children", tag, model=model), factory=list)


def ctext(tag: str, conv: Conv = STR, *, live: bool = False, strip: bool = True) -> Any:
    """A sub-element holding just text."""
    return _meta(Spec("ctext", tag, conv, live=live, strip=strip), None)


def ctexts(tag: str, conv: Conv = STR) -> Any:
    """Repeated sub-elements holding just text."""
    return _meta(Spec("ctexts", tag, conv), factory=list)


def cattr(tag: str, name: str, conv: Conv = STR) -> Any:
    """A sub-element that carries one attribute, e.g. <mac address='..'/>."""
    return _meta(Spec("cattr", tag, conv, sub=name), None)


def flag(tag: str) -> Any:
    """An empty sub-element whose presence is the value (<readonly/>)."""
    return _meta(Spec("flag", tag), False)


def raw(tag: str) -> Any:
    """A sub-element kept verbatim (libvirt keeps <metadata> untouched)."""
    return _meta(Spec("raw", tag), None)


def scaled(tag: str) -> Any:
    """A size element with an optional unit attribute; stored in KiB, written with unit='KiB'."""
    return _meta(Spec("scaled", tag), None)


def xattr(tag: str, name: str, conv: Conv = STR) -> Any:
    """An extra attribute on a sub-element that an earlier field writes (e.g. <memory dumpCore>)."""
    return _meta(Spec("xattr", tag, conv, sub=name), None)


_UNITS = {
    "b": 1, "bytes": 1, "kb": 1000, "k": 1024, "kib": 1024, "mb": 1000**2, "m": 1024**2, "mib": 1024**2,
    "gb": 1000**3, "g": 1024**3, "gib": 1024**3, "tb": 1000**4, "t": 1024**4, "tib": 1024**4,
    "pb": 1000**5, "p": 1024**5, "pib": 1024**5, "eb": 1000**6, "e": 1024**6, "eib": 1024**6,
}


def scale_to_kib(value: str, unit: str | None, what: str) -> int:
    """Convert a libvirt scaled integer (default unit KiB) to KiB, rounding up like virScaleInteger."""
    try:
        n = parse_decimal(value)
    except ValueError:
        raise XMLError(ErrorCode.XML_ERROR, f"Invalid value '{value}' for element or attribute '{what}'") from None
    mult = 1024 if unit is None else _UNITS.get(unit.lower())
    if mult is None:
        raise Error(ErrorCode.INVALID_ARG, f"unknown suffix '{unit}'")
    if n * mult > LLONG_MAX:  # libvirt caps sizes at LLONG_MAX bytes
        raise Error(ErrorCode.OVERFLOW, f"value too large: {value.strip()}{unit or ''}")
    return (n * mult + 1023) // 1024


def invalid_attr(name: str, elem: str, value: str, expected: str = "") -> VirtError:
    """libvirt's virXMLProp* error for a bad attribute value."""
    return XMLError(ErrorCode.XML_ERROR, f"Invalid value for attribute '{name}' in element '{elem}': '{value}'.{expected}")


_SPECS: dict[type, list[tuple[str, Spec]]] = {}


def _specs(cls: type) -> list[tuple[str, Spec]]:
    """The XML fields of a model class, in declaration order (worked out once per class: every element
    parsed or formatted asks)."""
    specs = _SPECS.get(cls)
    if specs is None:
        specs = _SPECS[cls] = [(f.name, f.metadata["xml"]) for f in dataclasses.fields(cls) if "xml" in f.metadata]
    return specs


#: field values deepcopy returns as they are
_IMMUTABLE = frozenset({str, int, float, bool, bytes, type(None)})


@dataclass(frozen=True)
class Ctx:
    """Formatting options: inactive drops runtime-only parts, secure keeps secrets."""

    inactive: bool = False
    secure: bool = False


class XMLModel:
    """Base of every model: generic parse/format driven by the fields' Specs, plus hooks."""

    TAG: ClassVar[str] = ""

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        """copy.deepcopy without the generic reduce protocol and without a call per plain value: the
        QEMU driver copies definitions on every define (PCI dry run) and start (live copy)."""
        cls = type(self)
        new = cls.__new__(cls)
        memo[id(self)] = new
        state = new.__dict__
        for key, value in self.__dict__.items():
            state[key] = value if type(value) in _IMMUTABLE else copy.deepcopy(value, memo)
        return new

    # ---------- parse ----------
    @classmethod
    def from_element(cls: type[M], el: etree._Element) -> M:
        """Build the model from an element; unknown attributes or sub-elements are errors."""
        parse = _PARSERS.get(cls)
        if parse is None:
            parse = _PARSERS[cls] = codegen.compile_parser(cls, _specs(cls), _HELPERS)
        return parse(el)  # the parser generated for cls builds a cls

    def validate(self) -> None:
        """Hook: semantic checks after parsing (libvirt's per-element parse errors)."""

    # ---------- format ----------
    def shown(self, ctx: Ctx) -> XMLModel:
        """Hook: the model as this context formats it, when that is not simply every set field (a
        runtime-only part of an inactive definition, say). Override it rather than to_element: the
        text writer and the element path both apply it."""
        return self

    def to_element(self, ctx: Ctx, tag: str | None = None) -> etree._Element | None:
        """Build the element; None when the model has nothing to say (libvirt omits empty elements)."""
        cls = type(self)
        fmt = _FORMATTERS.get(cls)
        if fmt is None:
            fmt = _FORMATTERS[cls] = codegen.compile_formatter(
                cls, _specs(cls), _HELPERS, shown=cls.shown is not XMLModel.shown)
        return cast("etree._Element | None", fmt(self, ctx, tag))

    def write(self, ctx: Ctx, tag: str | None, pad: str, out: list[str]) -> None:
        """Append the element as text indented by `pad` (formatting without building a tree)."""
        cls = type(self)
        writer = _WRITERS.get(cls)
        if writer is None:
            writer = None if cls.to_element is not XMLModel.to_element else codegen.compile_writer(
                cls, _specs(cls), _HELPERS, shown=cls.shown is not XMLModel.shown)
            writer = _WRITERS[cls] = writer or _write_via_element
        writer(self, ctx, tag, pad, out)

    def is_empty(self) -> bool:
        """True when every declared field is unset (used to drop empty wrapper elements)."""
        for fname, spec in _specs(type(self)):
            v = getattr(self, fname)
            if spec.kind in ("children", "ctexts") or spec.kind == "flag":
                if v:
                    return False
            elif v is not None:
                return False
        return True


SELF = "self"  # child("tag", SELF): a sub-element of the model's own kind (backing chains)


def _model(spec: Spec, owner: type) -> Any:
    return owner if spec.model == SELF else spec.model


def _conv_text(conv: Conv, value: str, tag: str) -> Any:
    try:
        return conv.parse(value)
    except ValueError:
        if conv.error is not None:
            raise conv.error(value) from None
        raise XMLError(ErrorCode.XML_ERROR, f"Invalid value '{value}' for element or attribute './{tag}[1]'") from None


def _no_extra(el: etree._Element, attrs: AbstractSet[str], tags: AbstractSet[str]) -> None:
    """Reject what the model does not understand rather than dropping it silently."""
    for a in el.keys():  # noqa: SIM118 - iterating an element gives its children, not its attributes
        if a not in attrs:
            raise _unsupported_attr(a, el)  # type: ignore[arg-type]  # str for a tree parsed from str
    if len(el):
        for c in el:
            if c.tag not in tags and isinstance(c.tag, str):  # comments and processing instructions pass
                raise _unsupported_element(c.tag, el)


def _unsupported_attr(name: str, el: etree._Element) -> VirtError:
    return Error(ErrorCode.CONFIG_UNSUPPORTED, f"unsupported attribute '{name}' in element '{el.tag}'")


def _unsupported_element(tag: str, el: etree._Element) -> VirtError:
    return Error(ErrorCode.CONFIG_UNSUPPORTED, f"unsupported element '{tag}' in element '{el.tag}'")


def _attr_error(spec: Spec, elem: str, value: str, name: str | None = None) -> VirtError:
    """A bad attribute value: the converter's own libvirt wording when it has one, else virXMLProp*'s."""
    if spec.conv.error is not None:
        return spec.conv.error(value)
    return invalid_attr(name or spec.name, elem, value, spec.conv.expected)


def _missing_attr(name: str, elem: str) -> VirtError:
    return XMLError(ErrorCode.XML_ERROR, f"Missing required attribute '{name}' in element '{elem}'")


def _only_one(message: str) -> VirtError:
    return XMLError(ErrorCode.INTERNAL_ERROR, message)


class NotPlain(Exception):
    """The XML needs lxml's serialiser: namespaces, comments or mixed content."""


# libvirt's virBufferEscapeString: markup characters as entities, other control characters dropped
_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}
    | {c: None for c in range(0x20) if chr(c) not in "\t\n\r"}
)
_SPECIAL = re.compile(r"[&<>\"'\x00-\x08\x0b\x0c\x0e-\x1f]")


def escape(value: str) -> str:
    """Text or an attribute value as libvirt writes it."""
    return value.translate(_ESCAPES) if _SPECIAL.search(value) else value


def indent(el: etree._Element) -> str:
    """Serialise an element with libvirt's 2-space indentation, single-quoted attributes and escaping,
    and a final newline. Namespaced trees go through lxml's serialiser and a requoting pass."""
    out: list[str] = []
    try:
        _write_element(el, "", out)
    except NotPlain:
        etree.indent(el, space="  ")
        return _requote(etree.tostring(el, encoding="unicode")) + "\n"
    return "".join(out)


def _write_element(el: etree._Element, pad: str, out: list[str]) -> None:
    tag = el.tag
    if type(tag) is not str or tag[0] == "{":
        raise NotPlain
    start = f"{pad}<{tag}"
    for name, value in cast("list[tuple[str, str]]", el.items()):  # lxml gives str for str input
        if name[0] == "{":
            raise NotPlain
        start += f" {name}='{escape(value)}'"
    text = el.text
    if len(el):
        if text and text.strip():
            raise NotPlain
        out.append(start + ">\n")
        inner = pad + "  "
        for child in el:
            tail = child.tail
            if tail and tail.strip():
                raise NotPlain
            _write_element(child, inner, out)
        out.append(f"{pad}</{tag}>\n")
    elif text is not None:
        out.append(f"{start}>{escape(text)}</{tag}>\n")
    else:
        out.append(start + "/>\n")


def _write_via_element(model: XMLModel, ctx: Ctx, tag: str | None, pad: str, out: list[str]) -> None:
    """The writer of a model that shapes its own element (overrides to_element)."""
    el = model.to_element(ctx, tag)
    if el is not None:
        _write_element(el, pad, out)


def _write_raw(xml: str, pad: str, out: list[str]) -> None:
    """An element kept verbatim (<metadata>), written as libvirt dumps it through libxml2: indented like
    the rest, its attributes in double quotes."""
    el = etree.fromstring(xml)
    etree.indent(el, space="  ", level=len(pad) // 2)
    out.append(pad + etree.tostring(el, encoding="unicode", with_tail=False) + "\n")


def to_text(model: XMLModel, ctx: Ctx, tag: str | None = None) -> str:
    """A model's XML document as libvirt formats it."""
    out: list[str] = []
    try:
        model.write(ctx, tag, "", out)
    except NotPlain:
        el = model.to_element(ctx, tag)
        return indent(el) if el is not None else ""
    return "".join(out)


#: what generated parsers and formatters call (see codegen)
_HELPERS: dict[str, Any] = {
    "attr_error": _attr_error, "missing_attr": _missing_attr, "only_one": _only_one, "invalid_attr": invalid_attr,
    "conv_text": _conv_text, "no_extra": _no_extra,
    "unsupported_attr": _unsupported_attr, "unsupported_element": _unsupported_element, "scale_to_kib": scale_to_kib, "tostring": etree.tostring,
    "Element": etree.Element, "SubElement": etree.SubElement, "fromstring": etree.fromstring,
    "esc": escape, "NotPlain": NotPlain, "write_raw": _write_raw,
}
_PARSERS: dict[type, Callable[[etree._Element], Any]] = {}
_WRITERS: dict[type, Callable[..., None]] = {}
_FORMATTERS: dict[type, Callable[..., Any]] = {}


# a start or empty-element tag (not a comment, declaration, processing instruction or end tag)
_START_TAG = re.compile(r"<[^!?/>][^>]*>")


def _requote(s: str) -> str:
    # lxml writes attributes with double quotes; libvirt writes single quotes and escapes ' as &apos;.
    return _START_TAG.sub(lambda m: _requote_tag(m.group()), s)


def _requote_tag(tag: str) -> str:
    # split on the quotes: odd parts are attribute values, where a ' must become &apos;
    parts = tag.split('"')
    parts[1::2] = [p.replace("'", "&apos;") for p in parts[1::2]]
    return "'".join(parts)
