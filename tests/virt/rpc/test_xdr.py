"""The XDR codec: primitive encodings, limits, and malformed input."""

from __future__ import annotations

import pytest

from virtstack.virt.rpc import xdr


def test_primitives_are_big_endian_words() -> None:
    assert xdr.INT.encode(-1) == b"\xff\xff\xff\xff"
    assert xdr.UINT.encode(0x20008086) == bytes.fromhex("20008086")
    assert xdr.HYPER.encode(-2) == b"\xff" * 7 + b"\xfe"
    assert xdr.UHYPER.encode(8388608) == bytes.fromhex("0000000000800000")
    assert xdr.BOOL.encode(True) == bytes.fromhex("00000001")
    assert xdr.DOUBLE.decode(xdr.DOUBLE.encode(1.5)) == 1.5


def test_string_and_opaque_padding() -> None:
    assert xdr.String(None).encode("test") == bytes.fromhex("0000000474657374")
    assert xdr.String(None).encode("abcde") == bytes.fromhex("000000056162636465000000")
    assert xdr.FixedOpaque(3).encode(b"abc") == b"abc\0"
    assert xdr.VarOpaque(8).decode(bytes.fromhex("00000002ffff0000")) == b"\xff\xff"


def test_optional_and_arrays() -> None:
    opt = xdr.Optional(xdr.String(None))
    assert opt.encode(None) == bytes(4)
    assert opt.decode(bytes.fromhex("000000010000000178000000")) == "x"
    arr = xdr.VarArray(xdr.INT, 20)
    assert arr.encode([0]) == bytes.fromhex("0000000100000000")  # AUTH_LIST reply: [REMOTE_AUTH_NONE]
    assert xdr.FixedArray(xdr.INT, 2).decode(bytes.fromhex("0000000100000002")) == [1, 2]


def test_struct_and_union_roundtrip() -> None:
    st = xdr.Struct("s", [("a", xdr.INT), ("b", xdr.Optional(xdr.UHYPER))])
    value = {"a": 7, "b": 1 << 40}
    assert st.decode(st.encode(value)) == value
    un = xdr.Union("u", xdr.INT, {1: ("i", xdr.INT), 7: ("s", xdr.String(None))})
    assert un.decode(un.encode((7, "hi"))) == (7, "hi")
    with pytest.raises(xdr.XdrError, match="no arm"):
        un.decode(bytes.fromhex("00000003"))


@pytest.mark.parametrize(
    ("typ", "data", "message"),
    [
        (xdr.INT, b"\0\0", "truncated"),
        (xdr.String(4), bytes.fromhex("0000000561626364650000"), "exceeds maximum"),
        (xdr.VarArray(xdr.INT, None), bytes.fromhex("7fffffff"), "exceeds the data present"),
        (xdr.BOOL, bytes.fromhex("00000002"), "bad bool"),
        (xdr.Enum("e", {"A": 0}), bytes.fromhex("00000005"), "not a value"),
        (xdr.INT, bytes(8), "trailing"),
    ],
)
def test_malformed_input_raises_xdr_error(typ: xdr.XdrType, data: bytes, message: str) -> None:
    with pytest.raises(xdr.XdrError, match=message):
        typ.decode(data)


def test_encoding_rejects_bad_values() -> None:
    with pytest.raises(xdr.XdrError):
        xdr.UINT.encode(-1)
    with pytest.raises(xdr.XdrError):
        xdr.FixedOpaque(16).encode(b"short")
    with pytest.raises(xdr.XdrError, match="missing field"):
        xdr.Struct("s", [("a", xdr.INT)]).encode({})
