"""Runtime domain objects apart from their definitions (libvirt's virdomainobjlist), driver-neutral.

A `DomainObj` pairs a definition (whatever model the driver parses; only `name` and `uuid` are read
here) with what exists only while a driver manages it: the live definition, state + reason, id,
persistence, autostart, driver runtime data and a per-domain lock. `DomainList` indexes them by name,
uuid and id, allocates ids from 1 upwards (never reused while the list lives, as libvirt's lastvmid) and
raises VIR_ERR_NO_DOMAIN with libvirt's wording. The list itself is not locked: drivers run on one
asyncio loop and never await between a lookup and its use of the index.
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import uuid as uuidlib
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from virtstack.virt.drivers.base import DomainRef, DomainState, ListFlags
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError


class Definition(Protocol):
    """What DomainObj needs of a parsed domain definition (drivers fill in a missing uuid first)."""

    @property
    def name(self) -> str | None: ...

    @property
    def uuid(self) -> uuidlib.UUID | str | None: ...


D = TypeVar("D", bound=Definition)

#: libvirt's QEMU_JOB_WAIT_TIME: how long an operation waits for another one on the same domain
JOB_WAIT_TIME = 30.0


_by_id = operator.attrgetter("id")
_by_name = operator.attrgetter("definition.name")


def not_running() -> VirtError:
    """libvirt's virDomainObjCheckActive refusal (generic domain code, hence VIR_FROM_DOMAIN)."""
    return VirtError(ErrorCode.OPERATION_INVALID, "domain is not running", domain=ErrorDomain.DOMAIN)


def check_active(obj: DomainObj[Any]) -> None:
    """virDomainObjCheckActive."""
    if not obj.is_active():
        raise not_running()


def def_uuid(defn: Definition) -> uuidlib.UUID:
    """A definition's uuid as a UUID, whether the model stores it as text or not."""
    value = defn.uuid
    if value is None:
        raise ValueError(f"definition of {defn.name!r} has no uuid")
    return value if isinstance(value, uuidlib.UUID) else uuidlib.UUID(str(value))


@dataclass(eq=False)
class DomainObj(Generic[D]):
    """One domain as a driver manages it.

    `definition` is the persistent (inactive) configuration; `live` is the definition the running
    instance was started from (None while inactive). A transient domain has only `live`-time existence
    but keeps its start definition in `definition` too, so reads never need a special case.
    """

    definition: D
    persistent: bool = False
    live: D | None = None
    state: DomainState = DomainState.SHUTOFF
    reason: int = 0
    id: int = -1
    autostart: bool = False
    has_managed_save: bool = False
    snapshot_count: int = 0
    #: driver-private runtime facts (pid, monitor socket path, ...), saved in status files by drivers
    runtime: dict[str, Any] = field(default_factory=dict)
    #: held by driver entry points for the whole of one operation on this domain (libvirt's job)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    #: set by undefine of a running persistent domain: the object goes away when it stops
    removing: bool = False
    #: formatted XML of `definition` by format options (see `definition_xml`)
    _xml: dict[Hashable, str] = field(default_factory=dict, init=False, repr=False)
    _xml_of: Any = field(default=None, init=False, repr=False)
    #: the last `ref()` and the definition it was made from
    _ref: DomainRef | None = field(default=None, init=False, repr=False)
    _ref_of: Any = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        return self.definition.name or ""

    @property
    def uuid(self) -> uuidlib.UUID:
        return def_uuid(self.definition)

    @property
    def current(self) -> D:
        """The definition in effect: live while active, else the persistent one."""
        return self.live if self.live is not None else self.definition

    def definition_xml(self, options: Hashable, render: Callable[[D], str]) -> str:
        """`render(definition)`, remembered per `options` while `definition` is the same object.

        Formatting takes about a millisecond, most of an XMLDesc call. Drivers replace a definition on
        redefine and never edit a persistent one in place, so the object's identity says whether a
        remembered text is still right.
        """
        if self._xml_of is not self.definition:
            self._xml, self._xml_of = {}, self.definition
        text = self._xml.get(options)
        if text is None:
            text = self._xml[options] = render(self.definition)
        return text

    def is_active(self) -> bool:
        return self.id > 0

    @contextlib.asynccontextmanager
    async def job(self, error_domain: ErrorDomain, timeout: float = JOB_WAIT_TIME) -> AsyncIterator[None]:
        """Hold `lock` for one operation, waiting at most `timeout` for the one before (libvirt's
        virDomainObjBeginJob), so an operation stuck on a hung hypervisor cannot wedge every later call."""
        try:
            async with asyncio.timeout(timeout):  # no task per call, unlike wait_for: this runs on every job
                await self.lock.acquire()
        except TimeoutError:
            raise VirtError(
                ErrorCode.OPERATION_TIMEOUT, "cannot acquire state change lock", domain=error_domain
            ) from None
        try:
            yield
        finally:
            self.lock.release()

    def ref(self) -> DomainRef:
        """The (name, uuid, id) triple the wire carries; made again only when the definition or the id
        changed (listing 1000 domains would otherwise rebuild 1000 handles)."""
        dom_id = self.id if self.is_active() else -1
        ref = self._ref
        if ref is None or ref.id != dom_id or self._ref_of is not self.definition:
            ref = self._ref = DomainRef(self.name, self.uuid, dom_id)
            self._ref_of = self.definition
        return ref

    def set_state(self, state: DomainState, reason: int) -> None:
        self.state = state
        self.reason = int(reason)

    def matches(self, flags: int) -> bool:
        """libvirt's virDomainObjMatchFilter for virConnectListAllDomains flags."""
        return not flags or _match_filter(self, ListFlags(flags))


def _group(flags: ListFlags, on: ListFlags, off: ListFlags, value: bool) -> bool:
    """A two-flag filter group: no filter when neither or both bits are set."""
    want_on, want_off = bool(flags & on), bool(flags & off)
    if want_on == want_off:
        return True
    return value if want_on else not value


def _match_filter(obj: DomainObj[Any], flags: ListFlags) -> bool:
    if not _group(flags, ListFlags.ACTIVE, ListFlags.INACTIVE, obj.is_active()):
        return False
    if not _group(flags, ListFlags.PERSISTENT, ListFlags.TRANSIENT, obj.persistent):
        return False
    state_bits = flags & (ListFlags.RUNNING | ListFlags.PAUSED | ListFlags.SHUTOFF | ListFlags.OTHER)
    if state_bits:
        state = obj.state
        known = (DomainState.RUNNING, DomainState.PAUSED, DomainState.SHUTOFF)
        if not (
            (state_bits & ListFlags.RUNNING and state == DomainState.RUNNING)
            or (state_bits & ListFlags.PAUSED and state == DomainState.PAUSED)
            or (state_bits & ListFlags.SHUTOFF and state == DomainState.SHUTOFF)
            or (state_bits & ListFlags.OTHER and state not in known)
        ):
            return False
    if not _group(flags, ListFlags.MANAGEDSAVE, ListFlags.NO_MANAGEDSAVE, obj.has_managed_save):
        return False
    if not _group(flags, ListFlags.AUTOSTART, ListFlags.NO_AUTOSTART, obj.autostart):
        return False
    return _group(flags, ListFlags.HAS_SNAPSHOT, ListFlags.NO_SNAPSHOT, obj.snapshot_count > 0)


class DomainList(Generic[D]):
    """All domains of one driver, indexed by name, uuid and id.

    `error_domain` is the driver's VIR_FROM_THIS (QEMU, TEST, ...), used for the lookup errors.
    """

    def __init__(self, error_domain: int = ErrorDomain.DOM) -> None:
        self._by_uuid: dict[uuidlib.UUID, DomainObj[D]] = {}
        self._by_name: dict[str, DomainObj[D]] = {}
        self._last_id = 0
        self.error_domain = int(error_domain)

    def __len__(self) -> int:
        return len(self._by_uuid)

    def __iter__(self) -> Iterator[DomainObj[D]]:
        return iter(list(self._by_uuid.values()))

    def _no_domain(self, detail: str) -> VirtError:
        return VirtError(ErrorCode.NO_DOMAIN, detail, domain=self.error_domain)

    # -- ids ----------------------------------------------------------------------------------------
    def allocate_id(self) -> int:
        """The next domain id: 1, 2, 3, ... never reused while this list lives."""
        self._last_id += 1
        return self._last_id

    def note_id(self, domain_id: int) -> None:
        """Keep allocation above an id taken over from a previous run (reconnect)."""
        self._last_id = max(self._last_id, domain_id)

    # -- lookups ------------------------------------------------------------------------------------
    def find_by_uuid(self, uuid: uuidlib.UUID) -> DomainObj[D] | None:
        return self._by_uuid.get(uuid)

    def find_by_name(self, name: str) -> DomainObj[D] | None:
        return self._by_name.get(name)

    def find_by_id(self, domain_id: int) -> DomainObj[D] | None:
        if domain_id <= 0:
            return None
        return next((o for o in self._by_uuid.values() if o.id == domain_id), None)

    def get_by_uuid(self, uuid: uuidlib.UUID) -> DomainObj[D]:
        obj = self.find_by_uuid(uuid)
        if obj is None:
            raise self._no_domain(f"no domain with matching uuid '{uuid}'")
        return obj

    def get_by_name(self, name: str) -> DomainObj[D]:
        obj = self.find_by_name(name)
        if obj is None:
            raise self._no_domain(f"no domain with matching name '{name}'")
        return obj

    def get_by_id(self, domain_id: int) -> DomainObj[D]:
        obj = self.find_by_id(domain_id)
        if obj is None:
            raise self._no_domain(f"no domain with matching id {domain_id}")
        return obj

    def get(self, ref: DomainRef) -> DomainObj[D]:
        """Resolve a handle from the wire by uuid (libvirt's qemuDomainObjFromDomain wording)."""
        obj = self.find_by_uuid(ref.uuid)
        if obj is None:
            raise self._no_domain(f"no domain with matching uuid '{ref.uuid}' ({ref.name})")
        return obj

    # -- changes ------------------------------------------------------------------------------------
    def check_new(self, defn: D, *, live: bool = False) -> DomainObj[D] | None:
        """libvirt's virDomainObjListAdd checks: the existing object for `defn`, or None if it is new.

        Same uuid under another name, or same name under another uuid, is refused; with `live` (a start
        from XML) an already active or starting domain is refused too. These errors come from libvirt's
        generic domain code, so their error domain is VIR_FROM_DOMAIN whatever the driver.
        """
        uuid = def_uuid(defn)
        existing = self._by_uuid.get(uuid)
        if existing is not None:
            if existing.removing:
                raise VirtError(
                    ErrorCode.OPERATION_FAILED,
                    f"domain '{existing.name}' is already being removed",
                    domain=ErrorDomain.DOMAIN,
                )
            if existing.name != defn.name:
                raise VirtError(
                    ErrorCode.OPERATION_FAILED,
                    f"domain '{existing.name}' is already defined with uuid {uuid}",
                    domain=ErrorDomain.DOMAIN,
                )
            if live and existing.is_active():
                raise VirtError(
                    ErrorCode.OPERATION_INVALID,
                    f"domain '{existing.name}' is already active",
                    domain=ErrorDomain.DOMAIN,
                )
            if live and not existing.persistent:
                raise VirtError(
                    ErrorCode.OPERATION_INVALID,
                    f"domain '{existing.name}' is already being started",
                    domain=ErrorDomain.DOMAIN,
                )
            return existing
        other = self._by_name.get(defn.name or "")
        if other is not None:
            raise VirtError(
                ErrorCode.OPERATION_FAILED,
                f"domain '{defn.name}' already exists with uuid {other.uuid}",
                domain=ErrorDomain.DOMAIN,
            )
        return None

    def add(self, obj: DomainObj[D]) -> DomainObj[D]:
        """Index a new object (callers ran `check_new` first)."""
        self._by_uuid[obj.uuid] = obj
        self._by_name[obj.name] = obj
        if obj.is_active():
            self.note_id(obj.id)
        return obj

    def remove(self, obj: DomainObj[D]) -> None:
        if self._by_uuid.get(obj.uuid) is obj:
            del self._by_uuid[obj.uuid]
        if self._by_name.get(obj.name) is obj:
            del self._by_name[obj.name]

    def list(self, flags: int = 0) -> list[DomainObj[D]]:
        """Objects passing listAllDomains' `flags`: active ones by id, then inactive ones by name."""
        objs = self._by_uuid.values()
        # no filter (the usual call) skips the per-domain flag checks, which dominate a 1000-domain list
        chosen = list(objs) if not flags else [o for o in objs if o.matches(flags)]
        active = sorted((o for o in chosen if o.id > 0), key=_by_id)  # plain attribute keys: no method
        inactive = sorted((o for o in chosen if o.id <= 0), key=_by_name)  # call per domain
        return active + inactive
