"""The `.x` parser: the XDR language constructs libvirt's files use."""

from __future__ import annotations

import pytest

from virtstack.virt.rpc import xdr, xdrgen

SAMPLE = """
%#include "ignored.h"
const MAXN = 4;
/* a comment */
typedef string name_t<MAXN>;
typedef name_t *opt_name;
enum colour { RED = 1, GREEN = 0x2 };
struct thing {
    name_t name;
    opaque uuid[16];
    unsigned char c;
    unsigned hyper big;
    colour col;
    opt_name alias;
    int list<MAXN>;
    char model[2];
    later_t fwd;
};
union choice switch (int kind) {
 case RED:
 case GREEN:
     int n;
 default:
     void;
};
typedef unsigned later_t;
"""


def test_parse_sample() -> None:
    ns = xdrgen.parse_text(SAMPLE)
    assert ns.constants["MAXN"] == 4 and ns.constants["GREEN"] == 2
    thing = ns.lookup("thing")
    value = {
        "name": "ab",
        "uuid": bytes(range(16)),
        "c": 255,
        "big": 2**64 - 1,
        "col": 2,
        "alias": None,
        "list": [1, -1],
        "model": [65, 66],
        "fwd": 9,
    }
    data = thing.encode(value)
    assert len(data) == 8 + 16 + 4 + 8 + 4 + 4 + 12 + 8 + 4
    assert thing.decode(data) == value
    choice = ns.lookup("choice")
    assert choice.encode((2, 5)) == bytes.fromhex("0000000200000005")
    assert choice.encode((9, None)) == bytes.fromhex("00000009")
    assert isinstance(ns.lookup("colour"), xdr.Enum)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("const X = ;", "expected a value"),
        ("struct s { int a; ", "end of file"),
        ("typedef int x[UNKNOWN];", "unknown constant"),
        ("bogus x;", "unexpected 'bogus'"),
        ("const X = 1 $", "unexpected character"),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(xdrgen.XdrSyntaxError, match=message):
        xdrgen.parse_text(text)
