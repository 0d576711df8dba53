"""XDR (RFC 4506) codec: type descriptors that pack Python values to bytes and unpack them back.

Rules: big-endian, every item padded to 4 bytes; `char`/`short` take a full word (libvirt's rpcgen
maps them to int). Values: ints for numeric types, bool for `bool`, bytes for opaque, str for strings
(UTF-8; invalid bytes are replaced on decode), lists for arrays, None or the value for optional `*`,
dicts for structs (field name -> value) and `(discriminant, value)` tuples for unions.
Every decode error is an `XdrError`; a decoder never reads past its buffer nor allocates more than
the bytes present justify.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class XdrError(ValueError):
    """Bytes that do not decode as the expected type, or a value that cannot be encoded."""


_S32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_S64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")


def _pad(n: int) -> int:
    return (4 - n % 4) % 4


#: the zero bytes that follow n bytes of data, by n % 4
_PADDING = (b"", b"\0\0\0", b"\0\0", b"\0")


class Packer:
    """Accumulates encoded items; `bytes()` gives the result."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def put(self, data: bytes) -> None:
        self._parts.append(data)

    def put_padded(self, data: bytes) -> None:
        self._parts.append(data)
        pad = _PADDING[len(data) % 4]
        if pad:
            self._parts.append(pad)

    def put_u32(self, value: int) -> None:
        self._parts.append(_U32.pack(value))

    def __bytes__(self) -> bytes:
        return b"".join(self._parts)


class Unpacker:
    """Reads items from a buffer, tracking the position; `done()` checks nothing is left over."""

    def __init__(self, data: bytes | memoryview, offset: int = 0) -> None:
        self._data = memoryview(data)
        self.pos = offset

    @property
    def remaining(self) -> int:
        return len(self._data) - self.pos

    def _advance(self, n: int) -> int:
        """Claim the next `n` bytes; returns where they start."""
        start = self.pos
        if n < 0 or start + n > len(self._data):
            raise XdrError(f"truncated data: need {n} bytes at offset {start}, have {self.remaining}")
        self.pos = start + n
        return start

    def take(self, n: int) -> bytes:
        start = self._advance(n)
        return bytes(self._data[start : start + n])

    def take_padded(self, n: int) -> bytes:
        out = self.take(n)
        self._advance(_pad(n))
        return out

    def take_text(self, n: int) -> str:
        """`n` bytes of UTF-8 (invalid bytes replaced) and their padding, decoded without a copy."""
        start = self._advance(n)
        self._advance(_pad(n))
        return str(self._data[start : start + n], "utf-8", "replace")

    def take_struct(self, fmt: struct.Struct) -> tuple[Any, ...]:
        """One fixed-size item, unpacked in place."""
        return fmt.unpack_from(self._data, self._advance(fmt.size))

    def take_u32(self) -> int:
        value: int = self.take_struct(_U32)[0]
        return value

    def done(self) -> None:
        if self.remaining:
            raise XdrError(f"{self.remaining} trailing bytes after the payload")


class XdrType:
    """One XDR type: knows how to write a value to a Packer and read one from an Unpacker."""

    name: str

    def pack(self, p: Packer, value: Any) -> None:
        raise NotImplementedError

    def unpack(self, u: Unpacker) -> Any:
        raise NotImplementedError

    def encode(self, value: Any) -> bytes:
        """The value as a standalone XDR byte string."""
        p = Packer()
        self.pack(p, value)
        return bytes(p)

    def decode(self, data: bytes | memoryview) -> Any:
        """Decode exactly `data` (trailing bytes are an error)."""
        u = Unpacker(data)
        value = self.unpack(u)
        u.done()
        return value

    def default(self) -> Any:
        """A zero value of this type (what a C struct initialised to zero would encode)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<xdr {self.name}>"


class _Builtin(XdrType):
    """A predefined type: one module-level instance, pickled by its name so that pickled tables
    (the protocol cache) refer to the same singletons instead of copies."""

    symbol: str

    def __reduce__(self) -> str:
        return self.symbol


class _Number(_Builtin):
    def __init__(self, symbol: str, name: str, fmt: struct.Struct, lo: int, hi: int) -> None:
        self.symbol = symbol
        self.name = name
        self._fmt = fmt
        self._lo = lo
        self._hi = hi

    def pack(self, p: Packer, value: Any) -> None:
        v = int(value)
        if not self._lo <= v <= self._hi:
            raise XdrError(f"{self.name} out of range: {v}")
        p.put(self._fmt.pack(v))

    def unpack(self, u: Unpacker) -> int:
        value: int = u.take_struct(self._fmt)[0]
        return value

    def default(self) -> int:
        return 0


class _Float(_Builtin):
    def __init__(self, symbol: str, name: str, fmt: struct.Struct) -> None:
        self.symbol = symbol
        self.name = name
        self._fmt = fmt

    def pack(self, p: Packer, value: Any) -> None:
        p.put(self._fmt.pack(float(value)))

    def unpack(self, u: Unpacker) -> float:
        value: float = u.take_struct(self._fmt)[0]
        return value

    def default(self) -> float:
        return 0.0


class _Bool(_Builtin):
    symbol = "BOOL"
    name = "bool"

    def pack(self, p: Packer, value: Any) -> None:
        p.put_u32(1 if value else 0)

    def unpack(self, u: Unpacker) -> bool:
        v = u.take_u32()
        if v > 1:
            raise XdrError(f"bad bool value {v}")
        return v == 1

    def default(self) -> bool:
        return False


class _Void(_Builtin):
    symbol = "VOID"
    name = "void"

    def pack(self, p: Packer, value: Any) -> None:
        if value is not None:
            raise XdrError("void takes no value")

    def unpack(self, u: Unpacker) -> None:
        return None

    def default(self) -> None:
        return None


INT = _Number("INT", "int", _S32, -(2**31), 2**31 - 1)
UINT = _Number("UINT", "unsigned int", _U32, 0, 2**32 - 1)
HYPER = _Number("HYPER", "hyper", _S64, -(2**63), 2**63 - 1)
UHYPER = _Number("UHYPER", "unsigned hyper", _U64, 0, 2**64 - 1)
FLOAT = _Float("FLOAT", "float", _F32)
DOUBLE = _Float("DOUBLE", "double", _F64)
BOOL = _Bool()
VOID = _Void()


class Enum(XdrType):
    """An enum: encoded as int; decoding rejects values the definition does not list."""

    def __init__(self, name: str, values: Mapping[str, int]) -> None:
        self.name = name
        self.values = dict(values)
        self._valid = frozenset(self.values.values())

    def pack(self, p: Packer, value: Any) -> None:
        v = self.values[value] if isinstance(value, str) else int(value)
        if v not in self._valid:
            raise XdrError(f"{v} is not a value of enum {self.name}")
        INT.pack(p, v)

    def unpack(self, u: Unpacker) -> int:
        v = INT.unpack(u)
        if v not in self._valid:
            raise XdrError(f"{v} is not a value of enum {self.name}")
        return v

    def default(self) -> int:
        return min(self._valid, key=abs) if self._valid else 0


class FixedOpaque(XdrType):
    """opaque x[N]: exactly N bytes, padded."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.name = f"opaque[{size}]"

    def pack(self, p: Packer, value: Any) -> None:
        data = bytes(value)
        if len(data) != self.size:
            raise XdrError(f"{self.name} needs {self.size} bytes, got {len(data)}")
        p.put_padded(data)

    def unpack(self, u: Unpacker) -> bytes:
        return u.take_padded(self.size)

    def default(self) -> bytes:
        return b"\0" * self.size


class VarOpaque(XdrType):
    """opaque x<max>: length word, bytes, padding."""

    def __init__(self, maximum: int | None) -> None:
        self.maximum = maximum
        self.name = f"opaque<{maximum or ''}>"

    def _check(self, n: int) -> None:
        if self.maximum is not None and n > self.maximum:
            raise XdrError(f"{self.name}: length {n} exceeds maximum {self.maximum}")

    def pack(self, p: Packer, value: Any) -> None:
        data = bytes(value)
        self._check(len(data))
        p.put_u32(len(data))
        p.put_padded(data)

    def unpack(self, u: Unpacker) -> bytes:
        n = u.take_u32()
        self._check(n)
        return u.take_padded(n)

    def default(self) -> bytes:
        return b""


class String(XdrType):
    """string x<max>: like var opaque, carrying UTF-8 text."""

    def __init__(self, maximum: int | None) -> None:
        self._raw = VarOpaque(maximum)
        self.maximum = maximum
        self.name = f"string<{maximum or ''}>"

    def pack(self, p: Packer, value: Any) -> None:
        if not isinstance(value, str):
            raise XdrError(f"{self.name} needs a str, got {type(value).__name__}")
        data = value.encode("utf-8")  # already bytes: straight to the packer, no copy through VarOpaque
        self._raw._check(len(data))
        p.put_u32(len(data))
        p.put_padded(data)

    def unpack(self, u: Unpacker) -> str:
        n = u.take_u32()
        self._raw._check(n)
        return u.take_text(n)

    def default(self) -> str:
        return ""


class FixedArray(XdrType):
    """T x[N]: exactly N elements, no length word."""

    def __init__(self, elem: XdrType, size: int) -> None:
        self.elem = elem
        self.size = size
        self.name = f"{elem.name}[{size}]"

    def pack(self, p: Packer, value: Any) -> None:
        items = list(value)
        if len(items) != self.size:
            raise XdrError(f"{self.name} needs {self.size} elements, got {len(items)}")
        for item in items:
            self.elem.pack(p, item)

    def unpack(self, u: Unpacker) -> list[Any]:
        return [self.elem.unpack(u) for _ in range(self.size)]

    def default(self) -> list[Any]:
        return [self.elem.default() for _ in range(self.size)]


class VarArray(XdrType):
    """T x<max>: count word then the elements."""

    def __init__(self, elem: XdrType, maximum: int | None) -> None:
        self.elem = elem
        self.maximum = maximum
        self.name = f"{elem.name}<{maximum or ''}>"

    def pack(self, p: Packer, value: Any) -> None:
        items = list(value)
        if self.maximum is not None and len(items) > self.maximum:
            raise XdrError(f"{self.name}: {len(items)} elements exceed maximum {self.maximum}")
        p.put_u32(len(items))
        for item in items:
            self.elem.pack(p, item)

    def unpack(self, u: Unpacker) -> list[Any]:
        n = u.take_u32()
        if self.maximum is not None and n > self.maximum:
            raise XdrError(f"{self.name}: {n} elements exceed maximum {self.maximum}")
        # every element takes at least 4 bytes: refuse counts the buffer cannot hold before looping
        if n * 4 > u.remaining:
            raise XdrError(f"{self.name}: count {n} exceeds the data present")
        return [self.elem.unpack(u) for _ in range(n)]

    def default(self) -> list[Any]:
        return []


class Optional(XdrType):
    """T *x: a bool word, then the value when it is 1. None means absent."""

    def __init__(self, elem: XdrType) -> None:
        self.elem = elem
        self.name = f"{elem.name}*"

    def pack(self, p: Packer, value: Any) -> None:
        if value is None:
            p.put_u32(0)
        else:
            p.put_u32(1)
            self.elem.pack(p, value)

    def unpack(self, u: Unpacker) -> Any:
        return self.elem.unpack(u) if BOOL.unpack(u) else None

    def default(self) -> None:
        return None


@dataclass
class Struct(XdrType):
    """struct: the fields in order; values are dicts keyed by field name."""

    name: str
    fields: list[tuple[str, XdrType]] = field(default_factory=list)

    def pack(self, p: Packer, value: Any) -> None:
        if not isinstance(value, Mapping):
            raise XdrError(f"struct {self.name} needs a mapping, got {type(value).__name__}")
        for fname, ftype in self.fields:
            try:
                fvalue = value[fname]
            except KeyError:
                raise XdrError(f"struct {self.name}: missing field {fname!r}") from None
            ftype.pack(p, fvalue)

    def unpack(self, u: Unpacker) -> dict[str, Any]:
        return {fname: ftype.unpack(u) for fname, ftype in self.fields}

    def default(self) -> dict[str, Any]:
        return {fname: ftype.default() for fname, ftype in self.fields}

    def __repr__(self) -> str:
        return f"<xdr struct {self.name}>"


@dataclass
class Union(XdrType):
    """union switch (disc): values are (discriminant, arm value) tuples."""

    name: str
    discriminant: XdrType
    arms: dict[int, tuple[str, XdrType]] = field(default_factory=dict)
    default_arm: tuple[str, XdrType] | None = None

    def _arm(self, disc: int) -> tuple[str, XdrType]:
        arm = self.arms.get(disc, self.default_arm)
        if arm is None:
            raise XdrError(f"union {self.name}: no arm for discriminant {disc}")
        return arm

    def pack(self, p: Packer, value: Any) -> None:
        disc, arm_value = value
        self.discriminant.pack(p, disc)
        self._arm(int(disc))[1].pack(p, arm_value)

    def unpack(self, u: Unpacker) -> tuple[int, Any]:
        disc = self.discriminant.unpack(u)
        return disc, self._arm(int(disc))[1].unpack(u)

    def default(self) -> tuple[int, Any]:
        disc = min(self.arms) if self.arms else 0
        return disc, self._arm(disc)[1].default()

    def __repr__(self) -> str:
        return f"<xdr union {self.name}>"


class Ref(XdrType):
    """A named type resolved lazily, so definitions may refer to types declared later."""

    def __init__(self, name: str, resolve: Callable[[str], XdrType]) -> None:
        self.name = name
        self._resolve = resolve
        self._target: XdrType | None = None

    @property
    def target(self) -> XdrType:
        if self._target is None:
            target = self._resolve(self.name)
            while isinstance(target, Ref):
                target = target.target
            self._target = target
        return self._target

    def pack(self, p: Packer, value: Any) -> None:
        self.target.pack(p, value)

    def unpack(self, u: Unpacker) -> Any:
        return self.target.unpack(u)

    def default(self) -> Any:
        return self.target.default()


def pack_values(types: Sequence[XdrType], values: Sequence[Any]) -> bytes:
    """Encode several values back to back (e.g. a header followed by a payload)."""
    p = Packer()
    for t, v in zip(types, values, strict=True):
        t.pack(p, v)
    return bytes(p)
