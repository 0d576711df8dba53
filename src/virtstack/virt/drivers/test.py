"""The in-memory `test:///default` driver: libvirt's test driver (test_driver.c) for daemon and client tests.

Starts with libvirt's default objects — a running domain `test` (same XML, UUID, info, node info and
capabilities as libvirt 9.0's test driver) — and implements the whole HypervisorDriver lifecycle
without a hypervisor: states change instantly and every transition is published as an event.
Definitions are the shared XML models (`virt.xml.domain`), with test_driver.c's post-parse defaults.
"""

from __future__ import annotations

import copy
import time
import uuid as uuidlib

from virtstack.virt.domain_obj import DomainList, DomainObj
from virtstack.virt.drivers.base import (
    ConsoleStream,
    DefinedDetail,
    DomainEvent,
    DomainInfo,
    DomainRef,
    DomainState,
    EventListener,
    LifecycleEvent,
    NodeInfo,
    PausedReason,
    ResumedDetail,
    RunningReason,
    ShutoffReason,
    StartedDetail,
    StartFlags,
    StoppedDetail,
    SuspendedDetail,
    UndefinedDetail,
    XmlFlags,
    unsupported,
)
from virtstack.virt.errors import ErrorCode, ErrorDomain, error_factory
from virtstack.virt.xml.devices.interface import IfaceTarget
from virtstack.virt.xml.domain import DomainDef, format_domain, parse_domain
from virtstack.virt.xml.domain.os import Boot

Error = error_factory(ErrorDomain.TEST)
DomainError = error_factory(ErrorDomain.DOMAIN)

#: libvirt's test driver reports hypervisor version 0.0.2 (virsh version: "Running hypervisor: TEST 0.0.2")
TEST_VERSION = 2

DEFAULT_DOMAIN_XML = """<domain type='test'>
  <name>test</name>
  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
  <memory unit='KiB'>8388608</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='i686'>hvm</type>
    <boot dev='hd'/>
  </os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <source file='/guest/diskimage1'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </disk>
    <interface type='network'>
      <mac address='aa:bb:cc:dd:ee:ff'/>
      <source network='default'/>
      <target dev='testnet0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x0'/>
    </interface>
    <memballoon model='virtio'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
    </memballoon>
  </devices>
</domain>
"""

#: libvirt's test driver node: 2 NUMA cells x 8 CPUs, i686 at 1400 MHz, 3 GiB
DEFAULT_NODE = NodeInfo(
    model="i686", memory_kib=3145728, cpus=16, mhz=1400, nodes=2, sockets=2, cores=2, threads=2
)
SECURITY_MODEL = ("testSecurity", "")
SECURITY_LABEL = ("libvirt-test", True)


def _capabilities_xml() -> str:
    """libvirt 9.0 test driver's capabilities document (testBuildCapabilities)."""
    cells = []
    for cell, (mem, page) in enumerate([(2097152, 4), (4194304, 8)]):
        cpus = "".join(
            f"            <cpu id='{c}' socket_id='{cell}' die_id='0' core_id='{c - 8 * cell}' siblings='{c}'/>\n"
            for c in range(8 * cell, 8 * cell + 8)
        )
        cells.append(
            f"        <cell id='{cell}'>\n"
            f"          <memory unit='KiB'>{mem}</memory>\n"
            f"          <pages unit='KiB' size='{page}'>524288</pages>\n"
            "          <pages unit='KiB' size='2048'>0</pages>\n"
            "          <pages unit='KiB' size='1048576'>0</pages>\n"
            f"          <cpus num='8'>\n{cpus}          </cpus>\n"
            "        </cell>\n"
        )
    guests = "".join(
        "  <guest>\n"
        f"    <os_type>{os_type}</os_type>\n"
        "    <arch name='i686'>\n      <wordsize>32</wordsize>\n"
        "      <emulator>/usr/bin/test-hv</emulator>\n      <domain type='test'/>\n    </arch>\n"
        "    <features>\n      <pae/>\n      <nonpae/>\n    </features>\n  </guest>\n\n"
        for os_type in ("hvm", "xen")
    )
    pages = "".join(f"      <pages unit='KiB' size='{s}'/>\n" for s in (4, 8, 2048, 1048576))
    return (
        "<capabilities>\n\n  <host>\n    <cpu>\n      <arch>i686</arch>\n"
        "      <features>\n        <pae/>\n        <nonpae/>\n      </features>\n"
        f"{pages}    </cpu>\n    <power_management/>\n    <iommu support='no'/>\n"
        f"    <topology>\n      <cells num='2'>\n{''.join(cells)}      </cells>\n    </topology>\n"
        "    <secmodel>\n      <model>testSecurity</model>\n      <doi></doi>\n    </secmodel>\n"
        f"  </host>\n\n{guests}</capabilities>\n"
    )


def _format(defn: DomainDef, domain_id: int = -1) -> str:
    """libvirt's XML for a definition: with `id` while running, inactive form otherwise."""
    if domain_id > 0:
        live = copy.copy(defn)
        live.id = domain_id
        return format_domain(live)
    return format_domain(defn, inactive=True)


def parse_definition(xml: str) -> DomainDef:
    """Parse with the shared domain parser, then apply the test driver's post-parse defaults.

    test_driver.c's defaults: a uuid when none is given, arch i686 (its only guest arch), boot
    from `hd` when the definition names no boot device and no kernel, and interface names
    `testnetN` (first free N) for interfaces without one (testDomainGenerateIfnames).
    """
    defn = parse_domain(xml)
    defn.validate()
    defn.id = None
    if defn.uuid is None:
        defn.uuid = uuidlib.uuid4()
    os_def = defn.os
    if os_def is not None and os_def.type is not None:
        if os_def.type.arch is None:
            os_def.type.arch = "i686"
        if not os_def.boot and os_def.kernel is None and os_def.type.value == "hvm":
            os_def.boot = [Boot(dev="hd")]
    used = {i.target.dev for i in defn.devices.interfaces if i.target is not None and i.target.dev}
    for iface in defn.devices.interfaces:
        if iface.target is None or not iface.target.dev or iface.target.dev.startswith("vnet"):
            n = 0
            while f"testnet{n}" in used:
                n += 1
            used.add(f"testnet{n}")
            if iface.target is None:
                iface.target = IfaceTarget(dev=f"testnet{n}")
            else:
                iface.target.dev = f"testnet{n}"
    return defn


class TestDriver:
    """libvirt's test:///default as a HypervisorDriver; state lives in this object only."""

    __test__ = False  # not a pytest test class, whatever its name says
    type_name = "TEST"

    def __init__(self, uri: str = "test:///default", *, populate: bool = True) -> None:
        self.uri = uri
        # define/create clashes are reported from libvirt's domain layer (VIR_FROM_DOMAIN); lookups below
        self.domains: DomainList[DomainDef] = DomainList(ErrorDomain.DOMAIN)
        self._listeners: list[EventListener] = []
        if populate:
            obj = self.domains.add(DomainObj(parse_definition(DEFAULT_DOMAIN_XML), persistent=True))
            self._start(obj, RunningReason.UNKNOWN, emit=False)

    # -- events ---------------------------------------------------------------------------------------
    def add_event_listener(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    def remove_event_listener(self, listener: EventListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, obj: DomainObj[DomainDef], event: LifecycleEvent, detail: int) -> None:
        ev = DomainEvent(obj.ref(), event, int(detail))
        for listener in list(self._listeners):
            listener(ev)

    # -- internal transitions -------------------------------------------------------------------------
    def _start(self, obj: DomainObj[DomainDef], reason: int, *, emit: bool = True) -> None:
        obj.id = self.domains.allocate_id()
        obj.live = copy.deepcopy(obj.definition)
        obj.set_state(DomainState.RUNNING, reason)
        if emit:
            self._emit(obj, LifecycleEvent.STARTED, StartedDetail.BOOTED)

    def _stop(self, obj: DomainObj[DomainDef], reason: ShutoffReason, detail: StoppedDetail) -> None:
        obj.set_state(DomainState.SHUTOFF, reason)
        self._emit(obj, LifecycleEvent.STOPPED, detail)
        obj.id = -1
        obj.live = None
        if not obj.persistent:
            self.domains.remove(obj)

    def _get(self, dom: DomainRef) -> DomainObj[DomainDef]:
        """The object behind a handle; test_driver.c says just "Domain not found" (no detail)."""
        obj = self.domains.find_by_uuid(dom.uuid)
        if obj is None:
            raise Error(ErrorCode.NO_DOMAIN, None)
        return obj

    def _active(self, dom: DomainRef) -> DomainObj[DomainDef]:
        """For destroy/reboot: libvirt's generic check (virDomainObjCheckActive, VIR_FROM_DOMAIN)."""
        obj = self._get(dom)
        if not obj.is_active():
            raise DomainError(ErrorCode.OPERATION_INVALID, "domain is not running")
        return obj

    def _in_state(self, dom: DomainRef, state: DomainState, wording: str) -> DomainObj[DomainDef]:
        """For suspend/resume/shutdown: test_driver.c's own state checks (internal errors)."""
        obj = self._get(dom)
        if obj.state != state:
            raise Error(ErrorCode.INTERNAL_ERROR, f"domain '{obj.name}' {wording}")
        return obj
        return obj

    # -- connection -----------------------------------------------------------------------------------
    async def connect_get_version(self) -> int:
        return TEST_VERSION

    async def connect_get_capabilities(self) -> str:
        return _capabilities_xml()

    async def node_get_info(self) -> NodeInfo:
        return DEFAULT_NODE

    async def connect_get_max_vcpus(self, type_name: str | None = None) -> int:
        return 32

    async def node_get_security_model(self) -> tuple[str, str]:
        return SECURITY_MODEL

    async def connect_list_all_domains(self, flags: int = 0) -> list[DomainRef]:
        return [o.ref() for o in self.domains.list(flags)]

    async def connect_domain_xml_to_native(self, native_format: str, xml: str, flags: int = 0) -> str:
        raise unsupported("virConnectDomainXMLToNative", ErrorDomain.DOMAIN)  # test_driver.c has none

    # -- lookups --------------------------------------------------------------------------------------
    async def domain_lookup_by_name(self, name: str) -> DomainRef:
        obj = self.domains.find_by_name(name)
        if obj is None:
            raise Error(ErrorCode.NO_DOMAIN, None)
        return obj.ref()

    async def domain_lookup_by_uuid(self, uuid: uuidlib.UUID) -> DomainRef:
        obj = self.domains.find_by_uuid(uuid)
        if obj is None:
            raise Error(ErrorCode.NO_DOMAIN, None)
        return obj.ref()

    async def domain_lookup_by_id(self, domain_id: int) -> DomainRef:
        obj = self.domains.find_by_id(domain_id)
        if obj is None:
            raise Error(ErrorCode.NO_DOMAIN, None)
        return obj.ref()

    # -- definition -----------------------------------------------------------------------------------
    async def domain_define_xml(self, xml: str, flags: int = 0) -> DomainRef:
        defn = parse_definition(xml)
        existing = self.domains.check_new(defn)
        if existing is None:
            obj = self.domains.add(DomainObj(defn, persistent=True))
            detail = DefinedDetail.ADDED
        else:
            obj = existing
            obj.definition = defn
            detail = DefinedDetail.ADDED if not obj.persistent else DefinedDetail.UPDATED
            obj.persistent = True
        self._emit(obj, LifecycleEvent.DEFINED, detail)
        return obj.ref()

    async def domain_undefine(self, dom: DomainRef, flags: int = 0) -> None:
        obj = self._get(dom)  # test_driver.c lets a transient domain be "undefined" too: a no-op
        self._emit(obj, LifecycleEvent.UNDEFINED, UndefinedDetail.REMOVED)
        obj.autostart = False
        if obj.is_active():
            obj.persistent = False
        else:
            self.domains.remove(obj)

    async def domain_create(self, dom: DomainRef, flags: int = 0) -> DomainRef:
        obj = self._get(dom)
        if obj.is_active():
            raise Error(ErrorCode.INTERNAL_ERROR, f"Domain '{obj.name}' is already running")
        self._start(obj, RunningReason.BOOTED)
        if flags & StartFlags.PAUSED:
            obj.set_state(DomainState.PAUSED, PausedReason.USER)
            self._emit(obj, LifecycleEvent.SUSPENDED, SuspendedDetail.PAUSED)
        return obj.ref()

    async def domain_create_xml(self, xml: str, flags: int = 0) -> DomainRef:
        defn = parse_definition(xml)
        existing = self.domains.check_new(defn, live=True)
        obj = existing if existing is not None else self.domains.add(DomainObj(defn, persistent=False))
        if existing is not None:
            obj.definition = defn
        return await self.domain_create(obj.ref(), flags)

    # -- lifecycle ------------------------------------------------------------------------------------
    async def domain_shutdown(self, dom: DomainRef, flags: int = 0) -> None:
        obj = self._get(dom)
        if not obj.is_active():
            raise Error(ErrorCode.INTERNAL_ERROR, f"domain '{obj.name}' not running")
        self._stop(obj, ShutoffReason.SHUTDOWN, StoppedDetail.SHUTDOWN)

    async def domain_reboot(self, dom: DomainRef, flags: int = 0) -> None:
        obj = self._active(dom)
        obj.set_state(DomainState.RUNNING, RunningReason.BOOTED)

    async def domain_destroy(self, dom: DomainRef, flags: int = 0) -> None:
        obj = self._active(dom)
        self._stop(obj, ShutoffReason.DESTROYED, StoppedDetail.DESTROYED)

    async def domain_suspend(self, dom: DomainRef) -> None:
        obj = self._in_state(dom, DomainState.RUNNING, "not running")
        obj.set_state(DomainState.PAUSED, PausedReason.USER)
        self._emit(obj, LifecycleEvent.SUSPENDED, SuspendedDetail.PAUSED)

    async def domain_resume(self, dom: DomainRef) -> None:
        obj = self._in_state(dom, DomainState.PAUSED, "not paused")
        obj.set_state(DomainState.RUNNING, RunningReason.UNPAUSED)
        self._emit(obj, LifecycleEvent.RESUMED, ResumedDetail.UNPAUSED)

    # -- queries --------------------------------------------------------------------------------------
    async def domain_get_info(self, dom: DomainRef) -> DomainInfo:
        obj = self._get(dom)
        d = obj.current
        # like test_driver.c, CPU time is the wall clock: a value that grows
        return DomainInfo(obj.state, d.memory_kib or 0, d.current_memory_kib or 0, d.vcpus, time.time_ns())

    async def domain_get_state(self, dom: DomainRef, flags: int = 0) -> tuple[int, int]:
        obj = self._get(dom)
        return int(obj.state), obj.reason

    async def domain_get_xml_desc(self, dom: DomainRef, flags: int = 0) -> str:
        obj = self._get(dom)
        defn, domain_id = (obj.definition, -1) if flags & XmlFlags.INACTIVE else (obj.current, obj.id)
        # definitions are replaced, never edited in place, so the text stays valid while `defn` does
        cached = obj.runtime.get("xml")
        if cached is not None and cached[0] is defn and cached[1] == domain_id:
            return str(cached[2])
        text = _format(defn, domain_id)
        obj.runtime["xml"] = (defn, domain_id, text)
        return text

    async def domain_get_autostart(self, dom: DomainRef) -> bool:
        return self._get(dom).autostart

    async def domain_set_autostart(self, dom: DomainRef, autostart: bool) -> None:
        obj = self._get(dom)  # test_driver.c accepts autostart on transient domains as well
        obj.autostart = bool(autostart)

    async def domain_is_active(self, dom: DomainRef) -> bool:
        return self._get(dom).is_active()

    async def domain_is_persistent(self, dom: DomainRef) -> bool:
        return self._get(dom).persistent

    async def domain_get_os_type(self, dom: DomainRef) -> str:
        self._get(dom)
        return "linux"  # test_driver.c answers "linux" for every domain

    async def domain_get_max_memory(self, dom: DomainRef) -> int:
        return self._get(dom).current.memory_kib or 0

    async def domain_has_managed_save_image(self, dom: DomainRef, flags: int = 0) -> bool:
        return self._get(dom).has_managed_save

    async def domain_snapshot_num(self, dom: DomainRef, flags: int = 0) -> int:
        return self._get(dom).snapshot_count

    async def domain_get_security_label(self, dom: DomainRef) -> tuple[str, bool]:
        # test_driver.c labels only running domains; an inactive one gets an empty label
        return SECURITY_LABEL if self._get(dom).is_active() else ("", False)

    async def domain_get_messages(self, dom: DomainRef, flags: int = 0) -> list[str]:
        self._get(dom)
        return []

    async def domain_open_console(
        self, dom: DomainRef, dev_name: str | None, flags: int = 0
    ) -> ConsoleStream:
        self._get(dom)
        raise unsupported("virDomainOpenConsole", ErrorDomain.DOMAIN)  # test_driver.c has no consoles either

    async def close(self) -> None:
        self._listeners.clear()
