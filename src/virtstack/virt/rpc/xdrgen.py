"""Parser for the XDR language (RFC 4506 §6, rpcgen's dialect): `.x` files -> XDR type descriptors.

Handles what libvirt's protocol files use: const, typedef, enum, struct, union (several `case` labels
per arm, `default`), fixed/variable arrays, opaque, string, optional `*`, and rpcgen's `char`/`short`
(one word each). `%` pass-through lines and comments are skipped; doc comments directly before enum
members are kept (`Namespace.member_docs`) because libvirt puts procedure annotations there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from virtstack.virt.rpc import xdr


class XdrSyntaxError(ValueError):
    """The `.x` text is not valid XDR language."""


# Alternatives ordered by frequency (blanks, names and punctuation dominate libvirt's files); the last
# one catches any other character, so one `finditer` pass covers the whole text.
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}()\[\]<>;:,=*])
  | (?P<number>-?(?:0[xX][0-9a-fA-F]+|\d+))
  | (?P<doc>/\*\*.*?\*/)
  | (?P<comment>/\*.*?\*/|//[^\n]*)
  | (?P<passthrough>^%[^\n]*)
  | (?P<bad>.)
    """,
    re.VERBOSE | re.DOTALL | re.MULTILINE,
)
_KEPT = frozenset({"number", "ident", "punct"})
_MULTILINE = frozenset({"space", "doc", "comment"})


@dataclass(slots=True)
class _Token:
    kind: str
    text: str
    line: int
    doc: str | None = None  # the doc comment right before this token, if any


def _tokenize(text: str, source: str) -> list[_Token]:
    tokens: list[_Token] = []
    line = 1
    pending_doc: str | None = None
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        chunk = m.group()
        if kind in _KEPT:
            tokens.append(_Token(kind, chunk, line, pending_doc))
            pending_doc = None
        elif kind == "doc":
            pending_doc = chunk
        elif kind == "bad":
            raise XdrSyntaxError(f"{source}:{line}: unexpected character {chunk!r}")
        if kind in _MULTILINE:
            line += chunk.count("\n")
    return tokens


_BUILTIN: dict[str, xdr.XdrType] = {
    "int": xdr.INT,
    "hyper": xdr.HYPER,
    "float": xdr.FLOAT,
    "double": xdr.DOUBLE,
    "bool": xdr.BOOL,
    "char": xdr.INT,
    "short": xdr.INT,
    "void": xdr.VOID,
}
_UNSIGNED: dict[str, xdr.XdrType] = {
    "int": xdr.UINT,
    "hyper": xdr.UHYPER,
    "char": xdr.UINT,
    "short": xdr.UINT,
}


@dataclass
class Namespace:
    """Everything defined by a set of `.x` files: constants, named types, enums, member doc comments."""

    constants: dict[str, int] = field(default_factory=dict)
    types: dict[str, xdr.XdrType] = field(default_factory=dict)
    enums: dict[str, xdr.Enum] = field(default_factory=dict)
    member_docs: dict[str, str] = field(default_factory=dict)

    def lookup(self, name: str) -> xdr.XdrType:
        """The type called `name`; KeyError if the files never define it."""
        try:
            return self.types[name]
        except KeyError:
            raise KeyError(f"XDR type {name!r} is not defined") from None

    def ref(self, name: str) -> xdr.XdrType:
        return self.types.get(name) or xdr.Ref(name, self.lookup)


class _Parser:
    def __init__(self, tokens: list[_Token], ns: Namespace, source: str) -> None:
        self.toks = tokens
        self.i = 0
        self.ns = ns
        self.source = source

    # -- token helpers
    def _peek(self) -> _Token | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _next(self) -> _Token:
        tok = self._peek()
        if tok is None:
            raise XdrSyntaxError(f"{self.source}: unexpected end of file")
        self.i += 1
        return tok

    def _expect(self, text: str) -> _Token:
        tok = self._next()
        if tok.text != text:
            raise XdrSyntaxError(f"{self.source}:{tok.line}: expected {text!r}, found {tok.text!r}")
        return tok

    def _accept(self, text: str) -> bool:
        tok = self._peek()
        if tok is not None and tok.text == text:
            self.i += 1
            return True
        return False

    def _ident(self) -> str:
        tok = self._next()
        if tok.kind != "ident":
            raise XdrSyntaxError(f"{self.source}:{tok.line}: expected a name, found {tok.text!r}")
        return tok.text

    def _value(self) -> int:
        tok = self._next()
        if tok.kind == "number":
            return int(tok.text, 0)
        if tok.kind == "ident":
            if tok.text not in self.ns.constants:
                raise XdrSyntaxError(f"{self.source}:{tok.line}: unknown constant {tok.text!r}")
            return self.ns.constants[tok.text]
        raise XdrSyntaxError(f"{self.source}:{tok.line}: expected a value, found {tok.text!r}")

    # -- grammar
    def parse(self) -> None:
        while self._peek() is not None:
            kw = self._ident()
            if kw == "const":
                name = self._ident()
                self._expect("=")
                self.ns.constants[name] = self._value()
            elif kw == "typedef":
                alias, t = self._declaration()
                if alias is None:
                    raise XdrSyntaxError(f"{self.source}: typedef void")
                self.ns.types[alias] = t
            elif kw == "enum":
                name = self._ident()
                self.ns.types[name] = self._enum_body(name)
            elif kw == "struct":
                name = self._ident()
                self.ns.types[name] = self._struct_body(name)
            elif kw == "union":
                name = self._ident()
                self.ns.types[name] = self._union_body(name)
            elif kw == "program":
                raise XdrSyntaxError(f"{self.source}: program definitions are not supported")
            else:
                raise XdrSyntaxError(f"{self.source}: unexpected {kw!r} at top level")
            self._expect(";")

    def _enum_body(self, name: str) -> xdr.Enum:
        self._expect("{")
        values: dict[str, int] = {}
        while True:
            tok = self._next()
            member = tok.text
            self._expect("=")
            values[member] = self._value()
            self.ns.constants[member] = values[member]
            if tok.doc:
                self.ns.member_docs[member] = tok.doc
            if self._accept("}"):
                break
            self._expect(",")
            if self._accept("}"):
                break
        enum = xdr.Enum(name, values)
        self.ns.enums[name] = enum
        return enum

    def _struct_body(self, name: str) -> xdr.Struct:
        self._expect("{")
        fields: list[tuple[str, xdr.XdrType]] = []
        while not self._accept("}"):
            fname, ftype = self._declaration()
            self._expect(";")
            if fname is not None:
                fields.append((fname, ftype))
        return xdr.Struct(name, fields)

    def _union_body(self, name: str) -> xdr.Union:
        self._expect("switch")
        self._expect("(")
        _, disc = self._declaration()
        self._expect(")")
        self._expect("{")
        union = xdr.Union(name, disc)
        while not self._accept("}"):
            labels: list[int] = []
            is_default = False
            while True:
                if self._accept("case"):
                    labels.append(self._value())
                    self._expect(":")
                elif self._accept("default"):
                    self._expect(":")
                    is_default = True
                else:
                    break
            if not labels and not is_default:
                tok = self._next()
                raise XdrSyntaxError(f"{self.source}:{tok.line}: expected case, found {tok.text!r}")
            arm_name, arm_type = self._declaration()
            self._expect(";")
            arm = (arm_name or "", arm_type)
            for label in labels:
                union.arms[label] = arm
            if is_default:
                union.default_arm = arm
        return union

    def _type_spec(self) -> xdr.XdrType:
        word = self._ident()
        if word == "unsigned":
            nxt = self._peek()
            if nxt is not None and nxt.text in _UNSIGNED:
                self.i += 1
                return _UNSIGNED[nxt.text]
            return xdr.UINT
        if word in _BUILTIN:
            return _BUILTIN[word]
        if word == "enum":
            return self._enum_body("<anonymous>")
        if word == "struct":
            nxt = self._peek()
            if nxt is not None and nxt.text == "{":
                return self._struct_body("<anonymous>")
            return self.ns.ref(self._ident())
        return self.ns.ref(word)

    def _declaration(self) -> tuple[str | None, xdr.XdrType]:
        tok = self._peek()
        if tok is not None and tok.text == "void":
            self.i += 1
            return None, xdr.VOID
        if tok is not None and tok.text in ("opaque", "string"):
            self.i += 1
            name = self._ident()
            if self._accept("["):
                size = self._value()
                self._expect("]")
                if tok.text == "string":
                    raise XdrSyntaxError(f"{self.source}:{tok.line}: fixed-length string")
                return name, xdr.FixedOpaque(size)
            self._expect("<")
            maximum = None if self._accept(">") else self._value()
            if maximum is not None:
                self._expect(">")
            return name, (xdr.String(maximum) if tok.text == "string" else xdr.VarOpaque(maximum))
        base = self._type_spec()
        if self._accept("*"):
            return self._ident(), xdr.Optional(base)
        name = self._ident()
        if self._accept("["):
            size = self._value()
            self._expect("]")
            return name, xdr.FixedArray(base, size)
        if self._accept("<"):
            maximum = None if self._accept(">") else self._value()
            if maximum is not None:
                self._expect(">")
            return name, xdr.VarArray(base, maximum)
        return name, base


def parse_files(paths: list[Path], predefined: dict[str, int] | None = None) -> Namespace:
    """Parse `.x` files in order into one namespace (later files may use earlier definitions)."""
    ns = Namespace(constants=dict(predefined or {}))
    for path in paths:
        parse_text(path.read_text(), ns, str(path.name))
    return ns


def parse_text(text: str, ns: Namespace | None = None, source: str = "<text>") -> Namespace:
    """Parse XDR language text into `ns` (a new namespace when None)."""
    ns = ns if ns is not None else Namespace()
    _Parser(_tokenize(text, source), ns, source).parse()
    return ns
