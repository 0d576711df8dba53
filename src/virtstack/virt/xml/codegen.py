"""Parse and format functions generated from a model's field specs, once per class.

The generic spec interpreter paid for every declared field of every element on every call: a loop, a
chain of kind tests, a lookup for an attribute or child that is mostly absent. Models like <domain> and
<devices> declare dozens of fields, and define parses and formats a whole domain per call. Generating a
straight-line function per class (as `dataclasses` generates `__init__`) leaves only the work the XML at
hand asks for. The generated source is kept in `SOURCES` so it can be read when debugging.

Both generators take a `helpers` namespace (error constructors, converters) from the caller, so this
module knows the spec kinds and nothing else of the model layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: class -> generated source of its parser / formatter, for reading when something goes wrong
SOURCES: dict[tuple[type, str], str] = {}

_SELF = "self"


def _compile(cls: type, kind: str, lines: list[str], namespace: dict[str, Any]) -> Callable[..., Any]:
    source = "\n".join(lines) + "\n"
    SOURCES[(cls, kind)] = source
    code = compile(source, f"<{kind} of {cls.__module__}.{cls.__qualname__}>", "exec")
    exec(code, namespace)
    return namespace[kind]


def _shown_hook(shown: bool) -> list[str]:
    """First line of a generated formatter for a class with a `shown` hook: format what it returns."""
    return ["    self = self.shown(ctx)"] if shown else []


def compile_parser(cls: type, specs: list[tuple[str, Any]], helpers: dict[str, Any]) -> Callable[[Any], Any]:
    """`parse(el) -> instance of cls`, with the same checks and error wording as the spec interpreter:
    fields in declaration order (so the first bad one reports), then anything not understood."""
    ns: dict[str, Any] = dict(helpers)
    ns.update(CLS=cls, TAG=getattr(cls, "TAG", ""))
    attrs = frozenset(spec.name for _, spec in specs if spec.kind == "attr")
    tags = frozenset(spec.name for _, spec in specs if spec.kind not in ("attr", "text", "xattr"))
    extra: dict[str, set[str]] = {}
    for _, spec in specs:
        if spec.kind == "xattr":
            extra.setdefault(spec.name, set()).add(spec.sub)
    ns.update(ATTRS=attrs, TAGS=tags, EMPTY=frozenset())
    has_children = any(spec.kind not in ("attr", "text") for _, spec in specs)
    out = [
        "def parse(el):",
        "    kw = {}",
        "    get = el.get",
        "    tag = el.tag if isinstance(el.tag, str) else TAG",
    ]
    if has_children:
        out += [
            "    by_tag = {}",
            "    for c in el:",
            "        subs = by_tag.get(c.tag)",
            "        if subs is None:",
            "            by_tag[c.tag] = [c]",
            "        else:",
            "            subs.append(c)",
        ]
    for i, (fname, spec) in enumerate(specs):
        ns[f"S{i}"] = spec
        ns[f"P{i}"] = spec.conv.parse
        ns[f"C{i}"] = spec.conv
        ns[f"M{i}"] = cls if spec.model == _SELF else spec.model
        key, name, sub = repr(fname), repr(spec.name), repr(spec.sub)
        kind = spec.kind
        if kind == "attr":
            out += [f"    v = get({name})", "    if v is not None:", "        try:",
                    f"            kw[{key}] = P{i}(v)", "        except ValueError:",
                    f"            raise attr_error(S{i}, tag, v) from None"]
            if spec.required:
                out += ["    else:",
                        f"        raise missing_attr({name}, tag)"]
        elif kind == "text":
            out += ["    t = el.text", "    if t is not None:", "        t = t.strip()", "        if t:",
                    f"            kw[{key}] = conv_text(C{i}, t, tag)"]
        else:
            out += [f"    subs = by_tag.get({name})", "    if subs:"]
            if kind == "xattr":
                out += [f"        v = subs[0].get({sub})", "        if v is not None:", "            try:",
                        f"                kw[{key}] = P{i}(v)", "            except ValueError:",
                        f"                raise invalid_attr({sub}, {name}, v, C{i}.expected) from None"]
            elif kind == "children":
                out += [f"        kw[{key}] = [M{i}.from_element(c) for c in subs]"]
            elif kind == "ctexts":
                out += [f"        kw[{key}] = [conv_text(C{i}, (c.text or '').strip(), {name}) for c in subs]"]
            elif kind == "child":
                if spec.only_one:
                    out += ["        if len(subs) > 1:",
                            f"            raise only_one({spec.only_one!r})"]
                out += [f"        kw[{key}] = M{i}.from_element(subs[0])"]
            elif kind == "ctext":
                ns[f"X{i}"] = frozenset(extra.get(spec.name, set()))
                strip = ".strip()" if spec.strip else ""
                out += ["        s = subs[0]", f"        no_extra(s, X{i}, EMPTY)",
                        f"        kw[{key}] = conv_text(C{i}, (s.text or ''){strip}, {name})"]
            elif kind == "cattr":
                ns[f"X{i}"] = frozenset({spec.sub})
                out += ["        s = subs[0]", f"        no_extra(s, X{i}, EMPTY)", f"        v = s.get({sub})",
                        "        if v is None:", f"            raise missing_attr({sub}, {name})", "        try:",
                        f"            kw[{key}] = P{i}(v)", "        except ValueError:",
                        f"            raise attr_error(S{i}, {name}, v, {sub}) from None"]
            elif kind == "flag":
                out += ["        no_extra(subs[0], EMPTY, EMPTY)", f"        kw[{key}] = True"]
            elif kind == "raw":
                out += [f"        kw[{key}] = tostring(subs[0], encoding='unicode', with_tail=False)"]
            elif kind == "scaled":
                ns[f"X{i}"] = frozenset({"unit"} | extra.get(spec.name, set()))
                where = repr(f"./{spec.name}[1]")
                out += ["        s = subs[0]", f"        no_extra(s, X{i}, EMPTY)",
                        f"        kw[{key}] = scale_to_kib((s.text or '').strip(), s.get('unit'), {where})"]
            else:
                raise TypeError(f"{cls.__name__}.{fname}: unknown spec kind {kind!r}")
    # what the model does not understand, reported after its own fields (attributes first, then children)
    out += ["    for a in el.keys():", "        if a not in ATTRS:", "            raise unsupported_attr(a, el)"]
    if has_children:
        out += ["    for t in by_tag:", "        if t not in TAGS and isinstance(t, str):",
                "            raise unsupported_element(t, el)"]
    else:
        out += ["    if len(el):", "        no_extra(el, ATTRS, TAGS)"]
    out += ["    obj = CLS(**kw)", "    obj.validate()", "    return obj"]
    return _compile(cls, "parse", out, ns)


def compile_formatter(
    cls: type, specs: list[tuple[str, Any]], helpers: dict[str, Any], *, shown: bool = False
) -> Callable[..., Any]:
    """`format(self, ctx, tag) -> element`: set fields only, live ones only for live XML, secrets only
    with the secure flag; sub-models format themselves (so their own overrides apply). `shown`: the
    class has a `shown` hook, and what it returns is formatted."""
    ns: dict[str, Any] = dict(helpers)
    ns["TAG"] = getattr(cls, "TAG", "")
    out = ["def format(self, ctx, tag=None):", *_shown_hook(shown), "    el = Element(tag or TAG)"]
    for i, (fname, spec) in enumerate(specs):
        ns[f"F{i}"] = spec.conv.format
        name, sub = repr(spec.name), repr(spec.sub)
        kind = spec.kind
        test = "v" if kind in ("children", "ctexts", "flag") else "v is not None"
        if spec.live:
            test += " and not ctx.inactive"
        if spec.secret:
            test += " and ctx.secure"
        out += [f"    v = self.{fname}", f"    if {test}:"]
        if kind == "attr":
            out += [f"        el.set({name}, F{i}(v))"]
        elif kind == "text":
            out += [f"        el.text = F{i}(v)"]
        elif kind == "child":
            out += [f"        s = v.to_element(ctx, {name})", "        if s is not None:", "            el.append(s)"]
        elif kind == "children":
            out += ["        for item in v:", f"            s = item.to_element(ctx, {name})",
                    "            if s is not None:", "                el.append(s)"]
        elif kind == "ctext":
            out += [f"        SubElement(el, {name}).text = F{i}(v)"]
        elif kind == "ctexts":
            out += ["        for item in v:", f"            SubElement(el, {name}).text = F{i}(item)"]
        elif kind == "cattr":
            out += [f"        SubElement(el, {name}).set({sub}, F{i}(v))"]
        elif kind == "flag":
            out += [f"        SubElement(el, {name})"]
        elif kind == "raw":
            out += ["        el.append(fromstring(v))"]
        elif kind == "scaled":
            out += [f"        SubElement(el, {name}, unit='KiB').text = str(v)"]
        elif kind == "xattr":
            out += [f"        s = el.find({name})", "        if s is not None:", f"            s.set({sub}, F{i}(v))"]
        else:
            raise TypeError(f"{cls.__name__}.{fname}: unknown spec kind {kind!r}")
    out += ["    return el"]
    return _compile(cls, "format", out, ns)


_ELEMENT_KINDS = ("child", "children", "ctext", "ctexts", "cattr", "flag", "raw", "scaled")


def compile_writer(
    cls: type, specs: list[tuple[str, Any]], helpers: dict[str, Any], *, shown: bool = False
) -> Callable[..., Any] | None:
    """`write(self, ctx, tag, pad, out)`: append the element as text in libvirt's layout (two-space
    indentation, single-quoted attributes, `<x/>` when empty), never building an lxml tree.

    Returns None for the shapes it does not write (text mixed with sub-elements, an extra attribute on a
    sub-model's element): those classes format through their element. A set raw field raises NotPlain,
    so the whole document goes through lxml, which knows namespaces.
    """
    kinds = {spec.kind for _, spec in specs}
    if "text" in kinds and kinds & set(_ELEMENT_KINDS):
        return None
    extra_attrs: dict[str, list[int]] = {}  # sub-element tag -> xattr specs adding to it
    for i, (_, spec) in enumerate(specs):
        if spec.kind == "xattr":
            extra_attrs.setdefault(spec.name, []).append(i)
    for tag in extra_attrs:
        if not any(spec.name == tag and spec.kind in ("ctext", "cattr", "scaled", "flag") for _, spec in specs):
            return None
    ns: dict[str, Any] = dict(helpers)
    ns["TAG"] = getattr(cls, "TAG", "")
    out = ["def write(self, ctx, tag, pad, out):", *_shown_hook(shown), "    tag = tag or TAG", "    start = pad + '<' + tag"]

    def test(spec: Any, value: str = "v") -> str:
        cond = value if spec.kind in ("children", "ctexts", "flag") else f"{value} is not None"
        if spec.live:
            cond += " and not ctx.inactive"
        if spec.secret:
            cond += " and ctx.secure"
        return cond

    def extras(tag: str) -> str:
        """Code appending a sub-element's extra attributes (xattr) to its start tag, or nothing."""
        code = ""
        for i in extra_attrs.get(tag, []):
            fname, spec = specs[i]
            value = f"self.{fname}"
            code += f" + ((\" {spec.sub}='\" + esc(F{i}({value})) + \"'\") if {test(spec, value)} else '')"
        return code

    for i, (fname, spec) in enumerate(specs):
        ns[f"F{i}"] = spec.conv.format
        if spec.kind == "attr":
            out += [f"    v = self.{fname}", f"    if {test(spec)}:",
                    f"        start += \" {spec.name}='\" + esc(F{i}(v)) + \"'\""]
    has_elements = bool(kinds & set(_ELEMENT_KINDS))
    out += ["    text = None"]
    if has_elements:
        out += ["    inner = pad + '  '", "    mark = len(out)", "    out.append(None)"]
    for i, (fname, spec) in enumerate(specs):
        kind, name = spec.kind, spec.name
        if kind in ("attr", "xattr"):
            continue
        out += [f"    v = self.{fname}", f"    if {test(spec)}:"]
        if kind == "text":
            out += [f"        text = esc(F{i}(v))"]
        elif kind == "child":
            out += [f"        v.write(ctx, {name!r}, inner, out)"]
        elif kind == "children":
            out += ["        for item in v:", f"            item.write(ctx, {name!r}, inner, out)"]
        elif kind == "ctext":
            out += [f"        out.append(inner + '<{name}'{extras(name)} + '>' + esc(F{i}(v)) + '</{name}>\\n')"]
        elif kind == "ctexts":
            out += ["        for item in v:",
                    f"            out.append(inner + '<{name}>' + esc(F{i}(item)) + '</{name}>\\n')"]
        elif kind == "cattr":
            out += [f"        out.append(inner + \"<{name} {spec.sub}='\" + esc(F{i}(v)) + \"'\"{extras(name)} + '/>\\n')"]
        elif kind == "flag":
            out += [f"        out.append(inner + '<{name}'{extras(name)} + '/>\\n')"]
        elif kind == "scaled":
            out += [f"        out.append(inner + \"<{name} unit='KiB'\"{extras(name)} + '>' + str(v) + '</{name}>\\n')"]
        elif kind == "raw" and not name.startswith("{"):
            out += ["        write_raw(v, inner, out)"]
        elif kind == "raw":
            out += ["        raise NotPlain"]  # a namespaced element: its xmlns goes on the root
        else:
            raise TypeError(f"{cls.__name__}.{fname}: unknown spec kind {kind!r}")
    if has_elements:
        out += ["    if len(out) > mark + 1:", "        out[mark] = start + '>\\n'",
                "        out.append(pad + '</' + tag + '>\\n')", "    else:", "        out[mark] = start + '/>\\n'"]
    else:
        out += ["    if text is None:", "        out.append(start + '/>\\n')", "    else:",
                "        out.append(start + '>' + text + '</' + tag + '>\\n')"]
    return _compile(cls, "write", out, ns)
