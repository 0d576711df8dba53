"""The hypervisor driver interface: what the daemon (and vsh without a daemon) may ask of a driver.

Method names follow libvirt's procedure names (`domain_suspend` <-> REMOTE_PROC_DOMAIN_SUSPEND) so the
RPC dispatch is a table. Every method is a coroutine: drivers talk to QEMU over QMP asynchronously.
A driver that lacks an operation does not define it; `unsupported()` turns that into
VIR_ERR_NO_SUPPORT in one place. Domains are passed as `DomainRef` (name, uuid, id), the same triple the
wire carries; a driver resolves it by uuid and raises VIR_ERR_NO_DOMAIN when it is gone.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Protocol, runtime_checkable

from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError


class DomainState(IntEnum):
    """virDomainState."""

    NOSTATE = 0
    RUNNING = 1
    BLOCKED = 2
    PAUSED = 3
    SHUTDOWN = 4
    SHUTOFF = 5
    CRASHED = 6
    PMSUSPENDED = 7


class RunningReason(IntEnum):
    UNKNOWN = 0
    BOOTED = 1
    MIGRATED = 2
    RESTORED = 3
    FROM_SNAPSHOT = 4
    UNPAUSED = 5
    MIGRATION_CANCELED = 6
    SAVE_CANCELED = 7
    WAKEUP = 8
    CRASHED = 9


class PausedReason(IntEnum):
    UNKNOWN = 0
    USER = 1
    MIGRATION = 2
    SAVE = 3
    DUMP = 4
    IOERROR = 5
    WATCHDOG = 6
    FROM_SNAPSHOT = 7
    SHUTTING_DOWN = 8
    SNAPSHOT = 9
    CRASHED = 10
    STARTING_UP = 11


class ShutdownReason(IntEnum):
    UNKNOWN = 0
    USER = 1


class ShutoffReason(IntEnum):
    UNKNOWN = 0
    SHUTDOWN = 1
    DESTROYED = 2
    CRASHED = 3
    MIGRATED = 4
    SAVED = 5
    FAILED = 6
    FROM_SNAPSHOT = 7
    DAEMON = 8


class LifecycleEvent(IntEnum):
    """virDomainEventType."""

    DEFINED = 0
    UNDEFINED = 1
    STARTED = 2
    SUSPENDED = 3
    RESUMED = 4
    STOPPED = 5
    SHUTDOWN = 6
    PMSUSPENDED = 7
    CRASHED = 8


class DefinedDetail(IntEnum):
    ADDED = 0
    UPDATED = 1


class UndefinedDetail(IntEnum):
    REMOVED = 0


class StartedDetail(IntEnum):
    BOOTED = 0


class SuspendedDetail(IntEnum):
    PAUSED = 0


class ResumedDetail(IntEnum):
    UNPAUSED = 0


class StoppedDetail(IntEnum):
    SHUTDOWN = 0
    DESTROYED = 1
    CRASHED = 2
    MIGRATED = 3
    SAVED = 4
    FAILED = 5


class ShutdownDetail(IntEnum):
    FINISHED = 0
    GUEST = 1
    HOST = 2


class ListFlags(IntFlag):
    """virConnectListAllDomainsFlags."""

    ACTIVE = 1
    INACTIVE = 2
    PERSISTENT = 4
    TRANSIENT = 8
    RUNNING = 16
    PAUSED = 32
    SHUTOFF = 64
    OTHER = 128
    MANAGEDSAVE = 256
    NO_MANAGEDSAVE = 512
    AUTOSTART = 1024
    NO_AUTOSTART = 2048
    HAS_SNAPSHOT = 4096
    NO_SNAPSHOT = 8192


class XmlFlags(IntFlag):
    """virDomainXMLFlags."""

    SECURE = 1
    INACTIVE = 2
    UPDATE_CPU = 4
    MIGRATABLE = 8


class StartFlags(IntFlag):
    PAUSED = 1
    AUTODESTROY = 2
    BYPASS_CACHE = 4
    FORCE_BOOT = 8
    VALIDATE = 16


@dataclass(frozen=True)
class DomainRef:
    """A domain as the wire names it: name, uuid and id (-1 when inactive)."""

    name: str
    uuid: uuidlib.UUID
    id: int = -1


@dataclass(frozen=True)
class DomainInfo:
    """virDomainInfo: memory in KiB, CPU time in nanoseconds."""

    state: DomainState
    max_mem_kib: int
    memory_kib: int
    nr_virt_cpu: int
    cpu_time_ns: int


@dataclass(frozen=True)
class NodeInfo:
    """virNodeInfo: memory in KiB, cpu frequency in MHz."""

    model: str
    memory_kib: int
    cpus: int
    mhz: int
    nodes: int
    sockets: int
    cores: int
    threads: int


@dataclass(frozen=True)
class DomainEvent:
    """One lifecycle transition, published by a driver for the daemon's event API."""

    domain: DomainRef
    event: LifecycleEvent
    detail: int


EventListener = Callable[[DomainEvent], None]


class ConsoleStream(Protocol):
    """A guest console opened by `domain_open_console`: bytes both ways until closed."""

    async def read(self) -> bytes:
        """Next chunk from the guest; b'' once the console is gone."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class HypervisorDriver(Protocol):
    """The core every hypervisor driver implements; optional operations are plain extra methods.

    Contracts: lookups raise VIR_ERR_NO_DOMAIN for an unknown domain; state-changing calls on a domain in
    the wrong state raise VIR_ERR_OPERATION_INVALID with libvirt's wording; XML errors carry libvirt's
    XML/CONFIG codes. Listeners added with `add_event_listener` see every lifecycle transition.
    """

    #: what `virConnectGetType` answers: "QEMU", "Test", ...
    type_name: str
    #: the URI the driver serves, e.g. "qemu:///system"
    uri: str

    async def connect_get_version(self) -> int: ...

    async def connect_get_capabilities(self) -> str: ...

    async def node_get_info(self) -> NodeInfo: ...

    async def connect_list_all_domains(self, flags: int = 0) -> list[DomainRef]: ...

    async def domain_lookup_by_name(self, name: str) -> DomainRef: ...

    async def domain_lookup_by_uuid(self, uuid: uuidlib.UUID) -> DomainRef: ...

    async def domain_lookup_by_id(self, domain_id: int) -> DomainRef: ...

    async def domain_define_xml(self, xml: str, flags: int = 0) -> DomainRef: ...

    async def domain_undefine(self, dom: DomainRef, flags: int = 0) -> None: ...

    async def domain_create(self, dom: DomainRef, flags: int = 0) -> DomainRef: ...

    async def domain_create_xml(self, xml: str, flags: int = 0) -> DomainRef: ...

    async def domain_shutdown(self, dom: DomainRef, flags: int = 0) -> None: ...

    async def domain_reboot(self, dom: DomainRef, flags: int = 0) -> None: ...

    async def domain_destroy(self, dom: DomainRef, flags: int = 0) -> None: ...

    async def domain_suspend(self, dom: DomainRef) -> None: ...

    async def domain_resume(self, dom: DomainRef) -> None: ...

    async def domain_get_info(self, dom: DomainRef) -> DomainInfo: ...

    async def domain_get_state(self, dom: DomainRef, flags: int = 0) -> tuple[int, int]: ...

    async def domain_get_xml_desc(self, dom: DomainRef, flags: int = 0) -> str: ...

    async def domain_get_autostart(self, dom: DomainRef) -> bool: ...

    async def domain_set_autostart(self, dom: DomainRef, autostart: bool) -> None: ...

    async def domain_is_active(self, dom: DomainRef) -> bool: ...

    async def domain_is_persistent(self, dom: DomainRef) -> bool: ...

    async def domain_get_os_type(self, dom: DomainRef) -> str: ...

    async def domain_get_max_memory(self, dom: DomainRef) -> int: ...

    async def connect_domain_xml_to_native(self, native_format: str, xml: str, flags: int = 0) -> str: ...

    async def domain_open_console(self, dom: DomainRef, dev_name: str | None, flags: int = 0) -> ConsoleStream: ...

    def add_event_listener(self, listener: EventListener) -> None: ...

    def remove_event_listener(self, listener: EventListener) -> None: ...

    async def close(self) -> None:
        """Release what the driver holds (monitors, files); running guests keep running."""
        ...


def unsupported(api_name: str, domain: int = ErrorDomain.NONE) -> VirtError:
    """The one place an absent operation becomes VIR_ERR_NO_SUPPORT (detail = libvirt's API name)."""
    return VirtError(ErrorCode.NO_SUPPORT, api_name, domain=domain)
