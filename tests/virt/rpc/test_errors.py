"""VirtError <-> remote_error, byte-exact against libvirtd 9.0's replies."""

from __future__ import annotations

from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError
from virtstack.virt.rpc.errors import decode_error, encode_error

# rpc-trace-9.0.txt: lookupByName('nosuch') against the QEMU driver, and a detail-less test-driver error
NOSUCH = (
    "0000002a0000000a0000000100000037446f6d61696e206e6f7420666f756e643a206e6f20646f6d61696e2077697468"
    "206d61746368696e67206e616d6520276e6f73756368270000000002000000000000000100000014446f6d61696e206e"
    "6f7420666f756e643a20257300000001000000256e6f20646f6d61696e2077697468206d61746368696e67206e616d65"
    "20276e6f737563682700000000000000ffffffffffffffff00000000"
)
PLAIN = (
    "0000002a0000000c0000000100000010446f6d61696e206e6f7420666f756e6400000002000000000000000100000010"
    "446f6d61696e206e6f7420666f756e640000000000000000ffffffffffffffff00000000"
)


def test_encode_is_byte_exact() -> None:
    err = VirtError(ErrorCode.NO_DOMAIN, "no domain with matching name 'nosuch'", ErrorDomain.QEMU)
    assert encode_error(err).hex() == NOSUCH
    assert encode_error(VirtError(ErrorCode.NO_DOMAIN, None, ErrorDomain.TEST)).hex() == PLAIN


def test_decode() -> None:
    err = decode_error(bytes.fromhex(NOSUCH))
    assert (err.code, err.domain) == (42, 10)
    assert str(err) == "Domain not found: no domain with matching name 'nosuch'"
    assert err.detail == "no domain with matching name 'nosuch'"


def test_decode_garbage_is_an_rpc_error() -> None:
    err = decode_error(b"\x00\x01")
    assert err.code == ErrorCode.RPC and err.domain == ErrorDomain.RPC
