"""VirtError <-> `remote_error` (virNetMessageError): how errors cross the wire.

libvirt fills the struct as virRaiseErrorFull does: `message` is the full text, `str1` the message
template ("Domain not found: %s"), `str2` the detail, `str3` null, `int1`/`int2` -1, and the unused
`dom`/`net` null (checked against rpc-trace-9.0.txt).
"""

from __future__ import annotations

from typing import Any

from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError
from virtstack.virt.rpc import xdr
from virtstack.virt.rpc.protocol import xdr_type


def remote_error_type() -> xdr.XdrType:
    return xdr_type("virNetMessageError")


def error_to_struct(err: VirtError) -> dict[str, Any]:
    """The remote_error fields for `err`."""
    return {
        "code": err.code,
        "domain": err.domain,
        "message": err.message,
        "level": err.level,
        "dom": None,
        "str1": err.template,
        "str2": err.detail,
        "str3": None,
        "int1": -1,
        "int2": -1,
        "net": None,
    }


def encode_error(err: VirtError) -> bytes:
    """The payload of a status=ERROR reply carrying `err`."""
    return remote_error_type().encode(error_to_struct(err))


def error_from_struct(fields: dict[str, Any]) -> VirtError:
    """A VirtError with exactly the code, domain, level and message the peer sent."""
    err = VirtError(fields["code"], fields.get("str2"), domain=fields["domain"], level=fields["level"])
    message = fields.get("message")
    if message is not None and message != err.message:
        err.message = message
        err.args = (message,)
    if fields.get("str1") is not None:
        err.template = fields["str1"]
    return err


def decode_error(payload: bytes) -> VirtError:
    """Decode a status=ERROR payload; a payload that is not a remote_error becomes an RPC error."""
    try:
        return error_from_struct(remote_error_type().decode(payload))
    except xdr.XdrError as exc:
        return rpc_error(f"malformed error payload: {exc}")


def rpc_error(detail: str, code: int = ErrorCode.RPC) -> VirtError:
    """An error of the RPC layer itself (VIR_FROM_RPC), e.g. "unknown procedure: 999"."""
    return VirtError(code, detail, domain=ErrorDomain.RPC)
