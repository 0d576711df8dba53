"""The programs libvirt speaks (remote, qemu, keepalive): procedure number <-> name <-> XDR types.

Built at import from the `.x` files beside this module (libvirt 9.0.0's src/rpc/virnetprotocol.x,
virkeepaliveprotocol.x, src/remote/remote_protocol.x, qemu_protocol.x; LGPL-2.1-or-later data, copied
unchanged) by our own parser (xdrgen), so the procedure table
is exactly libvirt's: `REMOTE_PROC_DOMAIN_SUSPEND = 34` becomes procedure 34, method `domain_suspend`,
argument type `remote_domain_suspend_args`, reply type `remote_domain_suspend_ret` (or void when the
`.x` file defines none), events `remote_<name>_msg`. The `@acl`/`@readstream`/`@priority` annotations
libvirt writes before each procedure are kept: they say which calls change state (refused on read-only
connections) and which open a stream.

Parsing takes tens of milliseconds, most of a daemon's or client's start; the parsed tables are kept in
a per-user cache (`~/.cache/virtstack/protocol/`, or `$VIRTSTACK_PROTOCOL_CACHE`) under a key that
hashes the `.x` files and the code that turns them into tables, so any change to either reparses.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import re
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from virtstack.virt.rpc import xdr, xdrgen

PROTOCOL_DIR = Path(__file__).parent
_FILES = ("virnetprotocol.x", "virkeepaliveprotocol.x", "remote_protocol.x", "qemu_protocol.x")

# Constants the .x files take from C headers (libvirt.h, libvirt-common.h).
_C_CONSTANTS = {
    "VIR_UUID_BUFLEN": 16,
    "VIR_SECURITY_MODEL_BUFLEN": 257,
    "VIR_SECURITY_LABEL_BUFLEN": 4097,
    "VIR_SECURITY_DOI_BUFLEN": 257,
    "VIR_TYPED_PARAM_INT": 1,
    "VIR_TYPED_PARAM_UINT": 2,
    "VIR_TYPED_PARAM_LLONG": 3,
    "VIR_TYPED_PARAM_ULLONG": 4,
    "VIR_TYPED_PARAM_DOUBLE": 5,
    "VIR_TYPED_PARAM_BOOLEAN": 6,
    "VIR_TYPED_PARAM_STRING": 7,
}

REMOTE_PROGRAM = 0x20008086
QEMU_PROGRAM = 0x20008087
KEEPALIVE_PROGRAM = 0x6B656570
PROTOCOL_VERSION = 1

# ACL permissions a read-only connection may use; every other permission changes state
# (libvirt's public API refuses those on VIR_CONNECT_RO connections with VIR_ERR_OPERATION_DENIED).
_READ_ONLY_PERMS = frozenset({"getattr", "read"})
# `read_secure` conditional on one of these flags is a read, unless the caller sets the flag: libvirt's
# public API then refuses a read-only connection ("virDomainGetXMLDesc with secure flag").
_SECURE_FLAGS = {
    "VIR_DOMAIN_XML_SECURE": 1,
    "VIR_DOMAIN_SNAPSHOT_XML_SECURE": 1,
    "VIR_DOMAIN_CHECKPOINT_XML_SECURE": 1,
    "VIR_DOMAIN_SAVE_IMAGE_XML_SECURE": 1,
}
_ANNOTATION = re.compile(r"@(\w+):\s*(\S+)")


@dataclass(frozen=True)
class Procedure:
    """One procedure of a program, with its XDR types and libvirt's annotations."""

    program: int
    number: int
    name: str  # without the REMOTE_PROC_ prefix, e.g. "DOMAIN_SUSPEND"
    args: xdr.XdrType
    ret: xdr.XdrType
    acl: tuple[str, ...] = ()
    priority_high: bool = False
    readstream: bool = False
    writestream: bool = False

    @property
    def method(self) -> str:
        """The driver method that implements it: DOMAIN_SUSPEND -> domain_suspend."""
        return self.name.lower()

    @property
    def read_only_ok(self) -> bool:
        """Whether a read-only connection may call it (no ACL permission beyond reading)."""
        for entry in self.acl:
            parts = entry.split(":")
            if len(parts) < 2:  # "@acl: none"
                continue
            perm = parts[1]
            if perm == "read_secure" and len(parts) > 2 and parts[2]:
                continue  # a read unless `secure_flags` are set; the caller checks those
            if perm not in _READ_ONLY_PERMS and not perm.startswith("search_"):
                return False
        return True

    @property
    def secure_flags(self) -> int:
        """Flags that turn this read into a secret-revealing one, refused on read-only connections."""
        value = 0
        for entry in self.acl:
            parts = entry.split(":")
            if len(parts) > 2 and parts[1] == "read_secure":
                value |= _SECURE_FLAGS.get(parts[2], 0)
        return value

    @property
    def opens_stream(self) -> bool:
        return self.readstream or self.writestream

    def encode_args(self, value: Any) -> bytes:
        return self.args.encode(value)

    def decode_args(self, data: bytes) -> Any:
        return self.args.decode(data)

    def encode_ret(self, value: Any) -> bytes:
        return self.ret.encode(value)

    def decode_ret(self, data: bytes) -> Any:
        return self.ret.decode(data)


@dataclass
class Program:
    """An RPC program: number, version and its procedures by number and by name."""

    name: str
    number: int
    version: int
    procedures: dict[int, Procedure] = field(default_factory=dict)
    by_name: dict[str, Procedure] = field(default_factory=dict)

    def get(self, number: int) -> Procedure | None:
        return self.procedures.get(number)

    def __getitem__(self, name: str) -> Procedure:
        """The procedure called `name` ("DOMAIN_SUSPEND"); KeyError if the program has none."""
        return self.by_name[name]


Tables = tuple[xdrgen.Namespace, dict[int, Program]]


def namespace() -> xdrgen.Namespace:
    """All types and constants of libvirt's protocol files, parsed once per process."""
    return _tables()[0]


@cache
def _tables() -> Tables:
    return load_tables(default_cache_dir())


def default_cache_dir() -> Path:
    """~/.cache/virtstack/protocol, or $VIRTSTACK_PROTOCOL_CACHE."""
    env = os.environ.get("VIRTSTACK_PROTOCOL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "virtstack" / "protocol"


def _cache_key() -> str:
    """Hash of everything the tables depend on: the .x files, the modules that build them, Python."""
    digest = hashlib.sha256(sys.version.encode())
    sources = [PROTOCOL_DIR / f for f in _FILES] + [Path(__file__), Path(xdr.__file__), Path(xdrgen.__file__)]
    for path in sources:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def parse_tables() -> Tables:
    """Parse the .x files and build the programs (no cache)."""
    ns = xdrgen.parse_files([PROTOCOL_DIR / f for f in _FILES], _C_CONSTANTS)
    return ns, _build_programs(ns)


def load_tables(cache_dir: Path) -> Tables:
    """The tables from `cache_dir` when a valid entry for the current sources is there, else parsed
    (and stored there for the next process; an unwritable cache only costs the parse)."""
    path = cache_dir / f"{_cache_key()}.pickle"
    with contextlib.suppress(OSError):
        st = path.stat()
        # only an entry this user wrote and nobody else can change: unpickling runs what it says
        if st.st_uid == os.getuid() and not st.st_mode & 0o022:
            try:
                ns, progs = pickle.loads(path.read_bytes())
                if isinstance(ns, xdrgen.Namespace) and isinstance(progs, dict):
                    return ns, progs
            except Exception:  # a truncated or foreign file: parse instead
                pass
    tables = parse_tables()
    with contextlib.suppress(OSError):
        from virtstack.common.atomic import write_atomic

        cache_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(path, pickle.dumps(tables, protocol=pickle.HIGHEST_PROTOCOL), mode=0o644)
    return tables


def _build(
    ns: xdrgen.Namespace, name: str, number: int, enum_name: str, prefix: str, type_prefix: str
) -> Program:
    prog = Program(name, number, PROTOCOL_VERSION)
    for member, value in ns.enums[enum_name].values.items():
        short = member.removeprefix(prefix)
        base = f"{type_prefix}{short.lower()}"
        args = ns.types.get(f"{base}_args") or ns.types.get(f"{base}_msg") or xdr.VOID
        ret = ns.types.get(f"{base}_ret") or xdr.VOID
        notes: dict[str, list[str]] = {}
        for key, val in _ANNOTATION.findall(ns.member_docs.get(member, "")):
            notes.setdefault(key, []).append(val)
        proc = Procedure(
            program=number,
            number=value,
            name=short,
            args=args,
            ret=ret,
            acl=tuple(notes.get("acl", ())),
            priority_high=notes.get("priority") == ["high"],
            readstream="readstream" in notes,
            writestream="writestream" in notes,
        )
        prog.procedures[value] = proc
        prog.by_name[short] = proc
    return prog


def programs() -> dict[int, Program]:
    """The programs by number: remote, qemu, keepalive."""
    return _tables()[1]


def _build_programs(ns: xdrgen.Namespace) -> dict[int, Program]:
    return {
        REMOTE_PROGRAM: _build(ns, "remote", REMOTE_PROGRAM, "remote_procedure", "REMOTE_PROC_", "remote_"),
        QEMU_PROGRAM: _build(ns, "qemu", QEMU_PROGRAM, "qemu_procedure", "QEMU_PROC_", "qemu_"),
        KEEPALIVE_PROGRAM: _build(
            ns, "keepalive", KEEPALIVE_PROGRAM, "keepalive_procedure", "KEEPALIVE_PROC_", "keepalive_"
        ),
    }


REMOTE = programs()[REMOTE_PROGRAM]
QEMU = programs()[QEMU_PROGRAM]
KEEPALIVE = programs()[KEEPALIVE_PROGRAM]


def xdr_type(name: str) -> xdr.XdrType:
    """A named type from the protocol files, e.g. "remote_nonnull_domain"."""
    return namespace().lookup(name)


def constant(name: str) -> int:
    """A constant from the protocol files, e.g. "REMOTE_DOMAIN_LIST_MAX"."""
    return namespace().constants[name]
