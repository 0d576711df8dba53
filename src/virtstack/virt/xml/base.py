"""Declarative XML models: each field declared once (kind, XML name, converter) serves parse and format."""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from lxml import etree

from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError, error_factory

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


@dataclass(frozen=True)
class _ParsePlan:
    """What from_element needs to know about a class beyond its specs, worked out once per class:
    the attributes and sub-elements it understands, and the extra attributes (xattr) a sub-element may
    carry."""

    attrs: frozenset[str]
    tags: frozenset[str]
    extra: dict[str, set[str]]


_PLANS: dict[type, _ParsePlan] = {}


def _parse_plan(cls: type) -> _ParsePlan:
    plan = _PLANS.get(cls)
    if plan is None:
        specs = _specs(cls)
        extra: dict[str, set[str]] = {}
        for _, spec in specs:
            if spec.kind == "xattr":
                extra.setdefault(spec.name, set()).add(spec.sub)
        plan = _PLANS[cls] = _ParsePlan(
            attrs=frozenset(spec.name for _, spec in specs if spec.kind == "attr"),
            tags=frozenset(spec.name for _, spec in specs if spec.kind not in ("attr", "text", "xattr")),
            extra=extra,
        )
    return plan


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
        kwargs: dict[str, Any] = {}
        plan = _parse_plan(cls)
        extra = plan.extra
        tag = el.tag if isinstance(el.tag, str) else cls.TAG
        by_tag: dict[Any, list[etree._Element]] = {}  # one pass over the children, not one per field
        for child in el:
            by_tag.setdefault(child.tag, []).append(child)
        for fname, spec in _specs(cls):
            if spec.kind == "xattr":
                found = by_tag[spec.name][0] if spec.name in by_tag else None
                value = found.get(spec.sub) if found is not None else None
                if value is not None:
                    try:
                        kwargs[fname] = spec.conv.parse(value)
                    except ValueError:
                        raise invalid_attr(spec.sub, spec.name, value, spec.conv.expected) from None
                continue
            if spec.kind == "attr":
                value = el.get(spec.name)
                if value is None:
                    if spec.required:
                        raise XMLError(
                            ErrorCode.XML_ERROR, f"Missing required attribute '{spec.name}' in element '{tag}'"
                        )
                    continue
                try:
                    kwargs[fname] = spec.conv.parse(value)
                except ValueError:
                    if spec.conv.error is not None:
                        raise spec.conv.error(value) from None
                    raise invalid_attr(spec.name, tag, value, spec.conv.expected) from None
            elif spec.kind == "text":
                if el.text is not None and el.text.strip():
                    kwargs[fname] = _conv_text(spec.conv, el.text.strip(), tag)
            else:
                subs = by_tag.get(spec.name)
                if not subs:
                    continue
                if spec.kind in ("children", "ctexts"):
                    if spec.kind == "children":
                        kwargs[fname] = [_model(spec, cls).from_element(c) for c in subs]
                    else:
                        kwargs[fname] = [_conv_text(spec.conv, (c.text or "").strip(), spec.name) for c in subs]
                    continue
                sub = subs[0]
                if spec.kind == "child":
                    if spec.only_one and len(subs) > 1:
                        raise XMLError(ErrorCode.INTERNAL_ERROR, spec.only_one)
                    kwargs[fname] = _model(spec, cls).from_element(sub)
                elif spec.kind == "ctext":
                    _no_extra(sub, extra.get(spec.name, set()), set())
                    text = sub.text or ""
                    kwargs[fname] = _conv_text(spec.conv, text.strip() if spec.strip else text, spec.name)
                elif spec.kind == "cattr":
                    _no_extra(sub, {spec.sub}, set())
                    v = sub.get(spec.sub)
                    if v is None:
                        raise XMLError(
                            ErrorCode.XML_ERROR, f"Missing required attribute '{spec.sub}' in element '{spec.name}'"
                        )
                    try:
                        kwargs[fname] = spec.conv.parse(v)
                    except ValueError:
                        if spec.conv.error is not None:
                            raise spec.conv.error(v) from None
                        raise invalid_attr(spec.sub, spec.name, v, spec.conv.expected) from None
                elif spec.kind == "flag":
                    _no_extra(sub, set(), set())
                    kwargs[fname] = True
                elif spec.kind == "raw":
                    kwargs[fname] = etree.tostring(sub, encoding="unicode", with_tail=False)
                elif spec.kind == "scaled":
                    _no_extra(sub, {"unit"} | extra.get(spec.name, set()), set())
                    kwargs[fname] = scale_to_kib((sub.text or "").strip(), sub.get("unit"), f"./{spec.name}[1]")
        _no_extra(el, plan.attrs, plan.tags)
        obj = cls(**kwargs)
        obj.validate()
        return obj

    def validate(self) -> None:
        """Hook: semantic checks after parsing (libvirt's per-element parse errors)."""

    # ---------- format ----------
    def to_element(self, ctx: Ctx, tag: str | None = None) -> etree._Element | None:
        """Build the element; None when the model has nothing to say (libvirt omits empty elements)."""
        el = etree.Element(tag or self.TAG)
        for fname, spec in _specs(type(self)):
            value = getattr(self, fname)
            if value is None:
                continue  # every kind writes nothing for an unset field
            if (spec.live and ctx.inactive) or (spec.secret and not ctx.secure):
                continue
            if spec.kind == "attr":
                if value is not None:
                    el.set(spec.name, spec.conv.format(value))
            elif spec.kind == "text":
                if value is not None:
                    el.text = spec.conv.format(value)
            elif spec.kind == "child":
                if value is not None:
                    sub = value.to_element(ctx, spec.name)
                    if sub is not None:
                        el.append(sub)
            elif spec.kind == "children":
                for item in value:
                    sub = item.to_element(ctx, spec.name)
                    if sub is not None:
                        el.append(sub)
            elif spec.kind == "ctext":
                if value is not None:
                    etree.SubElement(el, spec.name).text = spec.conv.format(value)
            elif spec.kind == "ctexts":
                for item in value:
                    etree.SubElement(el, spec.name).text = spec.conv.format(item)
            elif spec.kind == "cattr":
                if value is not None:
                    etree.SubElement(el, spec.name).set(spec.sub, spec.conv.format(value))
            elif spec.kind == "flag":
                if value:
                    etree.SubElement(el, spec.name)
            elif spec.kind == "raw":
                if value is not None:
                    el.append(etree.fromstring(value))
            elif spec.kind == "scaled" and value is not None:
                sub = etree.SubElement(el, spec.name, unit="KiB")
                sub.text = str(value)
            elif spec.kind == "xattr" and value is not None:
                target = el.find(spec.name)
                if target is not None:
                    target.set(spec.sub, spec.conv.format(value))
        return el

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
    for a in el.attrib:
        if isinstance(a, bytes):
            a = a.decode()
        if a not in attrs:
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, f"unsupported attribute '{a}' in element '{el.tag}'")
    for c in el:
        if not isinstance(c.tag, str):
            continue  # comments, processing instructions
        if c.tag not in tags:
            raise Error(ErrorCode.CONFIG_UNSUPPORTED, f"unsupported element '{c.tag}' in element '{el.tag}'")


def indent(el: etree._Element) -> str:
    """Serialise with libvirt's 2-space indentation, single-quoted attributes and a final newline."""
    etree.indent(el, space="  ")
    s = etree.tostring(el, encoding="unicode")
    return _requote(s) + "\n"


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
