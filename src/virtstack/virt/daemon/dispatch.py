"""Table-driven dispatch of remote procedures to driver methods, converting XDR values both ways.

A procedure `REMOTE_PROC_X_Y` calls the driver's `x_y` coroutine with the argument struct's fields in
order (handles become `DomainRef`, uuids `uuid.UUID`); the method's result fills the reply struct:
one field takes the value itself, several take a tuple, dataclass or dict in field order. Python
values are adapted to the wire (DomainRef -> remote_nonnull_domain, UUID -> 16 bytes, str -> C char
array, bool -> int). So adding a procedure means implementing a driver method, nothing else.
Wire-level duplicates that differ only by a flags argument map to one method (`ALIASES`).
"""

from __future__ import annotations

import dataclasses
import functools
import struct
import uuid as uuidlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from virtstack.virt.drivers.base import DomainRef, unsupported
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError
from virtstack.virt.rpc import xdr
from virtstack.virt.rpc.protocol import Procedure, constant, xdr_type

#: procedures whose method is another procedure's (libvirt keeps both forever; our drivers take flags once)
ALIASES: dict[str, str] = {
    "DOMAIN_UNDEFINE_FLAGS": "domain_undefine",
    "DOMAIN_DESTROY_FLAGS": "domain_destroy",
    "DOMAIN_SHUTDOWN_FLAGS": "domain_shutdown",
    "DOMAIN_CREATE_WITH_FLAGS": "domain_create",
    "DOMAIN_DEFINE_XML_FLAGS": "domain_define_xml",
}

# acronyms libvirt's API names keep upper-case (virConnectDomainXMLToNative, virDomainLookupByUUID)
_ACRONYMS = {"xml": "XML", "uuid": "UUID", "id": "ID", "cpu": "CPU", "os": "OS", "dhcp": "DHCP", "mac": "MAC",
             "pm": "PM", "numa": "Numa", "fs": "FS", "iothread": "IOThread", "vcpus": "Vcpus"}  # fmt: skip


def api_name(proc: Procedure) -> str:
    """libvirt's public API name for a procedure: DOMAIN_GET_XML_DESC -> virDomainGetXMLDesc."""
    words = proc.name.lower().split("_")
    if words[0] not in ("connect", "domain", "network", "storage", "node", "interface", "secret", "nwfilter"):
        words.insert(0, "connect")
    return "vir" + "".join(_ACRONYMS.get(w, w.capitalize()) for w in words)


def api_error_domain(proc: Procedure) -> int:
    """VIR_FROM_THIS of the libvirt source file that holds the procedure's public API (libvirt-domain.c
    reports VIR_FROM_DOMAIN, libvirt-network.c VIR_FROM_NETWORK, ...; libvirt-host.c VIR_FROM_NONE)."""
    for word, domain in (
        ("DOMAIN", ErrorDomain.DOMAIN),
        ("NETWORK", ErrorDomain.NETWORK),
        ("STORAGE", ErrorDomain.STORAGE),
    ):
        if word in proc.name.split("_"):
            return domain
    return ErrorDomain.NONE


def _unwrap(t: xdr.XdrType) -> xdr.XdrType:
    while isinstance(t, xdr.Ref):
        t = t.target
    return t


@functools.cache
def _domain_type() -> xdr.XdrType:
    return _unwrap(xdr_type("remote_nonnull_domain"))


def domain_to_wire(ref: DomainRef) -> dict[str, Any]:
    """A DomainRef as remote_nonnull_domain."""
    return {"name": ref.name, "uuid": ref.uuid.bytes, "id": ref.id}


def domain_from_wire(value: Mapping[str, Any]) -> DomainRef:
    return DomainRef(value["name"], uuidlib.UUID(bytes=value["uuid"]), value["id"])


_U32 = struct.Struct(">I")


def list_all_domains_reply(refs: Sequence[DomainRef], need_results: bool) -> bytes:
    """remote_connect_list_all_domains_ret, encoded straight from the handles.

    Through the generic encoder (a dict per handle, a type dispatch per field) a 1000-domain list costs
    more than the rest of the call; the layout is fixed by remote_protocol.x: `remote_nonnull_domain
    domains<REMOTE_DOMAIN_LIST_MAX>` (each `string name; opaque uuid[16]; int id`), then the count.
    """
    domains = refs if need_results else ()
    if len(domains) > constant("REMOTE_DOMAIN_LIST_MAX"):
        raise xdr.XdrError(f"{len(domains)} domains exceed REMOTE_DOMAIN_LIST_MAX")
    parts = [_U32.pack(len(domains))]
    for ref in domains:
        name = ref.name.encode("utf-8")
        layout = _NONNULL_DOMAIN.get(len(name))
        if layout is None:  # one struct per name length: length, padded name, uuid and id in one pack
            layout = _NONNULL_DOMAIN[len(name)] = struct.Struct(f">I{len(name) + (-len(name) % 4)}s16si")
        parts.append(layout.pack(len(name), name, ref.uuid.bytes, ref.id))
    parts.append(_U32.pack(len(refs)))
    return b"".join(parts)


_NONNULL_DOMAIN: dict[int, struct.Struct] = {}


Converter = Callable[[Any], Any]


def _uuid_from_wire(value: bytes) -> uuidlib.UUID:
    return uuidlib.UUID(bytes=value)


def _arg_converter(t: xdr.XdrType) -> Converter | None:
    """How a decoded argument of type `t` becomes the driver's argument (None: as it is)."""
    t = _unwrap(t)
    if t is _domain_type():
        return domain_from_wire
    if isinstance(t, xdr.Optional):
        inner = _arg_converter(t.elem)
        if inner is None:
            return None
        return lambda value: None if value is None else inner(value)
    if isinstance(t, xdr.FixedOpaque) and t.size == 16:
        return _uuid_from_wire
    return None


#: per procedure (program, number): the argument struct's fields with their converters, worked out
#: on first use since every call of a procedure converts the same way
_ARG_PLANS: dict[tuple[int, int], list[tuple[str, Converter | None]]] = {}


def _arg_plan(proc: Procedure) -> list[tuple[str, Converter | None]]:
    key = (proc.program, proc.number)
    plan = _ARG_PLANS.get(key)
    if plan is None:
        t = _unwrap(proc.args)
        fields = t.fields if isinstance(t, xdr.Struct) else []
        plan = _ARG_PLANS[key] = [(fname, _arg_converter(ftype)) for fname, ftype in fields]
    return plan


def args_from_wire(proc: Procedure, value: Any) -> list[Any]:
    """The driver method's positional arguments for a decoded argument struct."""
    return [value[f] if convert is None else convert(value[f]) for f, convert in _arg_plan(proc)]


def _to_wire(t: xdr.XdrType, value: Any) -> Any:
    t = _unwrap(t)
    if isinstance(value, DomainRef):
        return domain_to_wire(value)
    if isinstance(value, uuidlib.UUID):
        return value.bytes
    if isinstance(t, xdr.VarArray | xdr.FixedArray) and isinstance(value, str):
        chars = [*value.encode(), 0]  # a C string: libvirt sends the terminating NUL
        if isinstance(t, xdr.FixedArray):
            chars = (chars + [0] * t.size)[: t.size]
        return chars
    if isinstance(t, xdr.VarArray | xdr.FixedArray):
        return [_to_wire(t.elem, v) for v in value]
    if isinstance(t, xdr.Optional):
        return None if value is None else _to_wire(t.elem, value)
    if isinstance(t, xdr.Struct):
        return ret_to_wire(t, value)
    if isinstance(value, bool):
        return int(value)
    return value


def ret_to_wire(t: xdr.XdrType, value: Any) -> Any:
    """Fill struct `t` from a driver result (value, tuple, dataclass or dict)."""
    t = _unwrap(t)
    if not isinstance(t, xdr.Struct):
        return None if t is xdr.VOID else _to_wire(t, value)
    if t is _domain_type():
        return domain_to_wire(value)
    names = [f for f, _ in t.fields]
    if isinstance(value, Mapping):
        items = [value[n] for n in names]
    elif len(names) == 1:
        items = [value]
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = [getattr(value, f.name) for f in dataclasses.fields(value)]
    else:
        items = list(value)
    if len(items) != len(names):
        raise VirtError(ErrorCode.INTERNAL_ERROR, f"driver result does not fit {t.name}", ErrorDomain.RPC)
    return {fname: _to_wire(ftype, v) for (fname, ftype), v in zip(t.fields, items, strict=True)}


def method_for(driver: object, proc: Procedure) -> Any:
    """The bound driver method for `proc`, or raise VIR_ERR_NO_SUPPORT with libvirt's API name."""
    name = ALIASES.get(proc.name, proc.method)
    method = getattr(driver, name, None)
    if method is None or not callable(method):
        raise unsupported(api_name(proc), api_error_domain(proc))
    return method


#: the flag-less variants of procedures whose method takes flags: they call it with flags = 0
_FLAGLESS = frozenset({"DOMAIN_UNDEFINE", "DOMAIN_DESTROY", "DOMAIN_SHUTDOWN", "DOMAIN_CREATE"})


async def call_driver(driver: object, proc: Procedure, value: Any) -> bytes:
    """Call the driver with the decoded argument struct `value`; return the encoded reply payload."""
    method = method_for(driver, proc)
    args = args_from_wire(proc, value)
    if proc.name in _FLAGLESS:
        args.append(0)
    result = await method(*args)
    if _unwrap(proc.ret) is xdr.VOID:
        return b""
    return proc.encode_ret(ret_to_wire(proc.ret, result))
