"""The QEMU hypervisor driver (libvirt's qemu_driver.c): thin entry points over process and state.

Each entry point looks the domain up, takes its lock as a job (waiting at most `job_wait`, then libvirt's
"cannot acquire state change lock"), checks its state with libvirt's wording, and delegates to
`process.py` (QEMU lifecycle) or `state.py` (files). Destroy kills QEMU before it takes the lock, so
it ends a domain whose QEMU hangs. The driver lives on a state
directory (`QemuDriver(root=Path)`), so tests and private daemons run side by side; `root=None` uses
system paths. The first call loads persistent configs, reconnects to QEMUs left running by a previous
driver, and autostarts domains once per host boot, as libvirtd does at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid as uuidlib
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from virtstack.common.log import kv
from virtstack.kvm.accel import probe_cached
from virtstack.virt.domain_obj import JOB_WAIT_TIME, DomainList, DomainObj, check_active, not_running
from virtstack.virt.drivers.base import (
    ConsoleStream,
    DefinedDetail,
    DomainEvent,
    DomainInfo,
    DomainRef,
    DomainState,
    EventListener,
    LifecycleEvent,
    ListFlags,
    NodeInfo,
    PausedReason,
    RunningReason,
    StartFlags,
    UndefinedDetail,
    XmlFlags,
)
from virtstack.virt.drivers.qemu import definition as defs
from virtstack.virt.drivers.qemu.capabilities import DEFAULT_BINARY, QemuCaps, probe_qemu_caps
from virtstack.virt.drivers.qemu.command.model import QemuCommand, RuntimeContext
from virtstack.virt.drivers.qemu.config import QemuDriverConfig
from virtstack.virt.drivers.qemu.console import PtyConsole
from virtstack.virt.drivers.qemu.domain_caps import DomainCapsMixin
from virtstack.virt.drivers.qemu.domain_config import DomainConfigMixin
from virtstack.virt.drivers.qemu.domain_info import DomainInfoMixin
from virtstack.virt.drivers.qemu.domain_stats import DomainStatsMixin
from virtstack.virt.drivers.qemu.host_stats import HostStatsMixin, present_cpu_count
from virtstack.virt.drivers.qemu.nodeinfo import read_node_info
from virtstack.virt.drivers.qemu.process import ProcessManager, cpu_time_ns, runtime_of
from virtstack.virt.drivers.qemu.state import DriverState, StateLayout
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError, check_flags, error_factory

Error = error_factory(ErrorDomain.QEMU)
log = logging.getLogger(__name__)

#: written in the status directory once domains were autostarted (libvirt's "autostarted" marker):
#: the status directory is on tmpfs in a system install, so this is "once per host boot"
AUTOSTARTED_MARKER = "autostarted"


#: virDomainShutdownFlagValues / virDomainRebootFlagValues (the same two bits)
POWER_ACPI_BUTTON = 1
POWER_GUEST_AGENT = 2
#: virDomainDefineFlags: VALIDATE (the XML is checked as it is parsed anyway)
DEFINE_VALIDATE = 1
#: virDomainUndefineFlagsValues: managed save, snapshot/checkpoint metadata, NVRAM and TPM state, which
#: this driver never creates, so asking to remove or keep them changes nothing
UNDEFINE_FLAGS = 0x7F
#: virDomainCreateFlags accepted by start: PAUSED, BYPASS_CACHE, FORCE_BOOT, RESET_NVRAM (no NVRAM, no
#: managed save to bypass); AUTODESTROY is refused, as no connection owns a domain here
START_FLAGS = int(StartFlags.PAUSED | StartFlags.BYPASS_CACHE | StartFlags.FORCE_BOOT) | 32
#: virDomainConsoleFlags
CONSOLE_FORCE = 1
CONSOLE_SAFE = 2
#: virDomainDestroyFlagsValues
DESTROY_GRACEFUL = 1
DESTROY_REMOVE_LOGS = 2
#: virDomainQemuMonitorCommandFlags
MONITOR_COMMAND_HMP = 1
#: virDomainMessageType
MESSAGE_DEPRECATION = 1
MESSAGE_TAINTING = 2


def _not_running() -> VirtError:
    """The QEMU driver's own state check (shutdown needs a running, not merely active, domain)."""
    return Error(ErrorCode.OPERATION_INVALID, "domain is not running")


def _check_flags(flags: int, allowed: int, function: str) -> None:
    """virCheckFlags in the QEMU driver (VIR_FROM_QEMU)."""
    check_flags(flags, allowed, function, ErrorDomain.QEMU)


def _refuse_agent_only(flags: int) -> None:
    """Shutdown/reboot through the guest agent alone: we run no agent channel, as libvirt says."""
    if flags & POWER_GUEST_AGENT and not flags & POWER_ACPI_BUTTON:
        raise Error(ErrorCode.ARGUMENT_UNSUPPORTED, "QEMU guest agent is not configured")


class QemuDriver(HostStatsMixin, DomainStatsMixin, DomainConfigMixin, DomainCapsMixin, DomainInfoMixin):
    """`qemu:///system` (or a private instance on `root`) implementing `HypervisorDriver`."""

    type_name = "QEMU"

    def __init__(self, root: Path | None = None, *, uri: str = "qemu:///system", emulator: str = DEFAULT_BINARY):
        self.uri = uri
        self.emulator = emulator
        self.layout = StateLayout.for_root(root)
        self.state = DriverState(self.layout)
        self.config = QemuDriverConfig.system().with_overrides(
            lib_dir=str(self.layout.lib_dir),
            state_dir=str(self.layout.status_dir),
            log_dir=str(self.layout.log_dir),
            cache_dir=str(self.layout.cache_dir),
            channel_target_dir=str(self.layout.lib_dir / "channel" / "target"),
        )
        self.domains: DomainList[Any] = DomainList(ErrorDomain.QEMU)
        self.processes = ProcessManager(self)
        self._listeners: list[EventListener] = []
        self._caps: QemuCaps | None = None
        self._loaded = False
        self._closed = False
        self._load_lock = asyncio.Lock()
        #: seconds an operation waits for the one before it on the same domain (libvirt's 30 s)
        self.job_wait = JOB_WAIT_TIME

    def _job(self, obj: DomainObj[Any]) -> AbstractAsyncContextManager[None]:
        """The domain's lock for one operation; VIR_ERR_OPERATION_TIMEOUT after `job_wait` seconds."""
        return obj.job(ErrorDomain.QEMU, self.job_wait)

    # -- ProcessOwner hooks -------------------------------------------------------------------------
    def build_command(self, defn: Any, runtime: RuntimeContext) -> QemuCommand:
        return defs.build_command(defn, self._caps_now(), self.config, runtime)

    def format_live(self, obj: DomainObj[Any]) -> str:
        return defs.format_xml(obj.current, domain_id=obj.id, secure=True)

    def record_ptys(self, defn: Any, ptys: dict[str, str]) -> None:
        defs.record_ptys(defn, ptys)

    def taints(self, defn: Any) -> list[str]:
        # QEMU runs as this daemon's user: as root, that is libvirt's "user = root" in qemu.conf
        return defs.taint_flags(defn, qemu_runs_as_root=os.geteuid() == 0 or os.getegid() == 0)

    def record_balloon(self, obj: DomainObj[Any], current_kib: int) -> None:
        self._change_live(obj, lambda defn: defs.set_memory(defn, current_kib=current_kib))

    def cpu_affinity(self, defn: Any) -> tuple[list[set[int]], set[int]] | None:
        if not defs.pins_cpus(defn):
            return None
        hostcpus = present_cpu_count()
        return defs.vcpu_pins(defn, hostcpus), defs.emulator_pin(defn, hostcpus)

    def lifecycle_actions(self, defn: Any) -> tuple[str, str]:
        return defs.lifecycle_actions(defn)

    def publish(self, ref: DomainRef, event: LifecycleEvent, detail: int) -> None:
        """Hand one lifecycle event to every listener; a failing listener does not stop the others."""
        ev = DomainEvent(ref, event, int(detail))
        for listener in list(self._listeners):
            try:
                listener(ev)
            except Exception:
                log.exception("event listener failed", extra=kv(domain=ref.name, event=event.name))

    def add_event_listener(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    def remove_event_listener(self, listener: EventListener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    # -- loading ------------------------------------------------------------------------------------
    def _caps_now(self) -> QemuCaps:
        assert self._caps is not None, "capabilities are probed when the driver loads"
        return self._caps

    async def _ready(self) -> None:
        """Load state on first use (configs, reconnect, autostart); later calls return at once."""
        if self._closed:
            raise Error(ErrorCode.INVALID_CONN, "a closed QEMU driver")
        if self._loaded:
            return
        async with self._load_lock:
            if self._loaded:
                return
            self.state.acquire()
            self._caps = await asyncio.to_thread(probe_qemu_caps, self.emulator)
            await self._load()
            self._loaded = True
            await self._autostart()

    async def _load(self) -> None:
        for name, xml in self.state.load_configs().items():
            try:
                defn = defs.parse_config(xml, self._caps_now(), self.config)
            except VirtError as e:
                log.error("cannot load config", extra=kv(domain=name, error=e.message))
                continue
            obj: DomainObj[Any] = DomainObj(defn, persistent=True, autostart=self.state.autostart(name))
            self.domains.add(obj)
        for record in self.state.load_statuses():
            try:
                live = defs.parse_status_xml(record.live_xml)
            except VirtError as e:
                log.error("cannot load status", extra=kv(domain=record.name, error=e.message))
                continue
            obj = self.domains.find_by_name(record.name) or self.domains.add(DomainObj(live, persistent=False))
            obj.live = live
            await self.processes.reconnect(record, obj)

    async def _autostart(self) -> None:
        marker = self.layout.status_dir / AUTOSTARTED_MARKER
        if marker.exists():
            return
        marker.touch()
        for obj in self.domains.list():
            if obj.autostart and not obj.is_active():
                try:
                    async with self._job(obj):
                        await self._start(obj, defs.live_copy(obj.definition), paused=False)
                except VirtError as e:
                    log.error("autostart failed", extra=kv(domain=obj.name, error=e.message))

    async def _obj(self, dom: DomainRef) -> DomainObj[Any]:
        await self._ready()
        return self.domains.get(dom)

    async def close(self) -> None:
        """Drop monitors and listeners; running guests keep running for the next driver."""
        for obj in self.domains:
            rt = obj.runtime.get("qemu")
            monitor = getattr(rt, "monitor", None)
            if monitor is not None:
                await monitor.close()
        self._listeners.clear()
        self.state.release()
        self._closed = True

    # -- connection ---------------------------------------------------------------------------------
    async def connect_get_version(self) -> int:
        await self._ready()
        return self._caps_now().version_int

    async def connect_get_capabilities(self) -> str:
        """libvirt offers type 'kvm' whenever /dev/kvm works; whether it is fast only shows in logs."""
        await self._ready()
        usable = (await asyncio.to_thread(probe_cached)).usable
        return await asyncio.to_thread(defs.capabilities_xml, self._caps_now(), kvm_usable=usable)

    async def node_get_info(self) -> NodeInfo:
        return await asyncio.to_thread(read_node_info)

    async def connect_list_all_domains(self, flags: int = 0) -> list[DomainRef]:
        _check_flags(flags, int(~ListFlags(0)), "qemuConnectListAllDomains")  # every filter flag
        await self._ready()
        return [o.ref() for o in self.domains.list(flags)]

    async def domain_lookup_by_name(self, name: str) -> DomainRef:
        await self._ready()
        return self.domains.get_by_name(name).ref()

    async def domain_lookup_by_uuid(self, uuid: uuidlib.UUID) -> DomainRef:
        await self._ready()
        return self.domains.get_by_uuid(uuid).ref()

    async def domain_lookup_by_id(self, domain_id: int) -> DomainRef:
        await self._ready()
        return self.domains.get_by_id(domain_id).ref()

    async def connect_domain_xml_to_native(self, native_format: str, xml: str, flags: int = 0) -> str:
        await self._ready()
        if native_format != "qemu-argv":
            raise Error(ErrorCode.INVALID_ARG, f"unsupported config type {native_format}")
        return defs.xml_to_native(xml, self._caps_now(), self.config)

    # -- definitions --------------------------------------------------------------------------------
    async def domain_define_xml(self, xml: str, flags: int = 0) -> DomainRef:
        _check_flags(flags, DEFINE_VALIDATE, "qemuDomainDefineXMLFlags")
        await self._ready()
        defn = defs.parse_config(xml, self._caps_now(), self.config)
        obj = self.domains.check_new(defn)
        if obj is None:
            obj = DomainObj(defn, persistent=True)
            self.state.save_config(obj.name, defs.format_xml(defn, inactive=True, secure=True))
            self.domains.add(obj)
            self.publish(obj.ref(), LifecycleEvent.DEFINED, DefinedDetail.ADDED)
            return obj.ref()
        async with self._job(obj):
            self.state.save_config(obj.name, defs.format_xml(defn, inactive=True, secure=True))
            detail = DefinedDetail.UPDATED if obj.persistent else DefinedDetail.ADDED
            obj.definition = defn
            obj.persistent = True
            if obj.is_active():
                self.processes.save_status(obj)
            self.publish(obj.ref(), LifecycleEvent.DEFINED, detail)
            return obj.ref()

    async def domain_undefine(self, dom: DomainRef, flags: int = 0) -> None:
        _check_flags(flags, UNDEFINE_FLAGS, "qemuDomainUndefineFlags")  # none has anything to remove here
        obj = await self._obj(dom)
        async with self._job(obj):
            if not obj.persistent:
                raise Error(ErrorCode.OPERATION_INVALID, "cannot undefine transient domain")
            self.state.delete_config(obj.name)
            obj.autostart = False
            self.publish(obj.ref(), LifecycleEvent.UNDEFINED, UndefinedDetail.REMOVED)
            if obj.is_active():
                # libvirt: a running domain stays, now transient; it goes away when it stops
                obj.persistent = False
                obj.definition = obj.current
                self.processes.save_status(obj)
            else:
                self.domains.remove(obj)

    async def domain_get_xml_desc(self, dom: DomainRef, flags: int = 0) -> str:
        _check_flags(flags, int(XmlFlags.SECURE | XmlFlags.INACTIVE | XmlFlags.UPDATE_CPU | XmlFlags.MIGRATABLE),
                     "qemuDomainGetXMLDesc")  # fmt: skip
        obj = await self._obj(dom)
        xml_flags = XmlFlags(flags)
        secure = bool(xml_flags & XmlFlags.SECURE)
        if not obj.is_active():  # an inactive domain's definition is its parsed config, never edited
            return obj.definition_xml(secure, lambda d: defs.format_xml(d, inactive=True, secure=secure))
        if xml_flags & XmlFlags.INACTIVE:
            return defs.format_xml(obj.definition, inactive=True, secure=secure)
        return defs.format_xml(obj.current, domain_id=obj.id, secure=secure)

    async def domain_get_autostart(self, dom: DomainRef) -> bool:
        return (await self._obj(dom)).autostart

    async def domain_set_autostart(self, dom: DomainRef, autostart: bool) -> None:
        obj = await self._obj(dom)
        async with self._job(obj):
            if not obj.persistent:
                raise Error(ErrorCode.OPERATION_INVALID, "cannot set autostart for transient domain")
            self.state.set_autostart(obj.name, bool(autostart))
            obj.autostart = bool(autostart)

    async def domain_is_active(self, dom: DomainRef) -> bool:
        return (await self._obj(dom)).is_active()

    async def domain_is_persistent(self, dom: DomainRef) -> bool:
        return (await self._obj(dom)).persistent

    async def domain_get_os_type(self, dom: DomainRef) -> str:
        return defs.os_type((await self._obj(dom)).current)

    async def domain_get_max_memory(self, dom: DomainRef) -> int:
        return defs.memory_kib((await self._obj(dom)).current)[0]

    # -- lifecycle ----------------------------------------------------------------------------------
    async def _start(self, obj: DomainObj[Any], defn: Any, *, paused: bool) -> None:
        if defs.virt_type(defn) == "kvm":
            await self._warn_if_kvm_slow(obj.name)
        await self.processes.start(obj, defn, paused=paused)

    async def _warn_if_kvm_slow(self, name: str) -> None:
        result = await asyncio.to_thread(probe_cached)
        if not result.fast:
            log.warning(
                "starting a type='kvm' domain, but KVM here is slow; type='qemu' (TCG) would run faster",
                extra=kv(domain=name, probe=result.summary()),
            )

    async def domain_create(self, dom: DomainRef, flags: int = 0) -> DomainRef:
        _check_flags(flags, START_FLAGS, "qemuDomainCreateWithFlags")
        obj = await self._obj(dom)
        async with self._job(obj):
            if obj.is_active():
                raise Error(ErrorCode.OPERATION_INVALID, "domain is already running")
            await self._start(obj, defs.live_copy(obj.definition), paused=bool(StartFlags(flags) & StartFlags.PAUSED))
            return obj.ref()

    async def domain_create_xml(self, xml: str, flags: int = 0) -> DomainRef:
        _check_flags(flags, int(StartFlags.PAUSED | StartFlags.VALIDATE), "qemuDomainCreateXML")
        await self._ready()
        defn = defs.parse_config(xml, self._caps_now(), self.config)
        obj = self.domains.check_new(defn, live=True)
        added = obj is None
        if obj is None:
            obj = self.domains.add(DomainObj(defn, persistent=False))
        async with self._job(obj):
            try:
                paused = bool(StartFlags(flags) & StartFlags.PAUSED)
                await self._start(obj, defs.live_copy(defn), paused=paused)
            except BaseException:
                if added:
                    self.domains.remove(obj)
                raise
            return obj.ref()

    async def domain_shutdown(self, dom: DomainRef, flags: int = 0) -> None:
        """The ACPI power button; with on_poweroff=restart libvirt turns it into a reboot."""
        _check_flags(flags, POWER_ACPI_BUTTON | POWER_GUEST_AGENT, "qemuDomainShutdownFlags")
        obj = await self._obj(dom)
        async with self._job(obj):
            if obj.state != DomainState.RUNNING:
                raise _not_running()
            _refuse_agent_only(flags)
            rt = runtime_of(obj)
            if rt.monitor is None:
                raise _not_running()
            rt.fake_reboot = defs.lifecycle_actions(obj.current)[0] in ("restart", "rename-restart")
            await rt.monitor.system_powerdown()

    async def domain_reboot(self, dom: DomainRef, flags: int = 0) -> None:
        """ACPI reboot as libvirt does it: power button, then reset instead of exit on SHUTDOWN.

        With on_reboot=destroy|preserve libvirt makes it a plain shutdown.
        """
        _check_flags(flags, POWER_ACPI_BUTTON | POWER_GUEST_AGENT, "qemuDomainReboot")
        obj = await self._obj(dom)
        async with self._job(obj):
            check_active(obj)
            _refuse_agent_only(flags)
            rt = runtime_of(obj)
            if rt.monitor is None:
                raise _not_running()
            rt.fake_reboot = defs.lifecycle_actions(obj.current)[1] not in ("destroy", "preserve")
            await rt.monitor.system_powerdown()

    async def domain_destroy(self, dom: DomainRef, flags: int = 0) -> None:
        """libvirt's qemuDomainDestroyFlags: kill first, then take the lock to finish the stop.

        Killing before locking is what lets destroy end a domain whose QEMU hangs: the operation
        holding the lock is waiting on that QEMU, and fails (freeing the lock) once it is gone.
        """
        _check_flags(flags, DESTROY_GRACEFUL | DESTROY_REMOVE_LOGS, "qemuDomainDestroyFlags")
        obj = await self._obj(dom)
        check_active(obj)
        rt = await self.processes.kill(obj, graceful=bool(flags & DESTROY_GRACEFUL))
        async with self._job(obj):
            await self.processes.finish_destroy(obj, rt)
            if flags & DESTROY_REMOVE_LOGS:
                rt.log_path.unlink(missing_ok=True)

    async def domain_suspend(self, dom: DomainRef) -> None:
        obj = await self._obj(dom)
        async with self._job(obj):
            check_active(obj)
            if obj.state == DomainState.PAUSED:
                return
            rt = runtime_of(obj)
            if rt.monitor is None:
                raise _not_running()
            await self.processes.stop_cpus(obj, PausedReason.USER)
            self.processes.save_status(obj)

    async def domain_resume(self, dom: DomainRef) -> None:
        obj = await self._obj(dom)
        async with self._job(obj):
            check_active(obj)
            if obj.state == DomainState.RUNNING:
                raise Error(ErrorCode.OPERATION_INVALID, "domain is already running")
            if obj.state != DomainState.PAUSED:
                return  # shutting down: libvirt leaves it alone too
            rt = runtime_of(obj)
            if rt.monitor is None:
                raise _not_running()
            await self.processes.start_cpus(obj, RunningReason.UNPAUSED)
            self.processes.save_status(obj)

    async def domain_reset(self, dom: DomainRef, flags: int = 0) -> None:
        """The reset button (virsh reset): the guest reboots at once, the domain stays running."""
        _check_flags(flags, 0, "qemuDomainReset")
        obj = await self._obj(dom)
        async with self._job(obj):
            check_active(obj)
            rt = runtime_of(obj)
            if rt.monitor is None:
                raise _not_running()
            rt.fake_reboot = False
            await rt.monitor.system_reset()

    # -- runtime queries ----------------------------------------------------------------------------
    async def domain_has_managed_save_image(self, dom: DomainRef, flags: int = 0) -> bool:
        """This driver never writes managed-save images, so a domain has one only if a model says so."""
        _check_flags(flags, 0, "qemuDomainHasManagedSaveImage")
        return (await self._obj(dom)).has_managed_save

    async def domain_get_state(self, dom: DomainRef, flags: int = 0) -> tuple[int, int]:
        _check_flags(flags, 0, "qemuDomainGetState")
        obj = await self._obj(dom)
        return int(obj.state), int(obj.reason)

    async def domain_get_info(self, dom: DomainRef) -> DomainInfo:
        obj = await self._obj(dom)
        max_kib, cur_kib = defs.memory_kib(obj.current)
        cpu_ns = cpu_time_ns(runtime_of(obj).pid) if obj.is_active() else 0
        return DomainInfo(obj.state, max_kib, cur_kib, defs.vcpus_current(obj.current), cpu_ns)

    async def domain_get_messages(self, dom: DomainRef, flags: int = 0) -> list[str]:
        """virDomainGetMessages: why the running domain is tainted (flags 0 or TAINTING). Deprecation
        notes (DEPRECATION) would come from deprecated machine types and CPU models, which this driver
        does not track, so that kind is always empty."""
        _check_flags(flags, MESSAGE_DEPRECATION | MESSAGE_TAINTING, "qemuDomainGetMessages")
        obj = await self._obj(dom)
        taints = runtime_of(obj).taints if obj.is_active() else []
        if flags and not flags & MESSAGE_TAINTING:
            return []
        return [f"tainted: {message}" for flag, message in defs.TAINT_MESSAGES.items() if flag in taints]

    async def domain_monitor_command(self, dom: DomainRef, cmd: str, flags: int = 0) -> str:
        """The QEMU program's qemu-monitor-command: `cmd` goes to QEMU as it is (QMP JSON, or HMP with
        flag 1), and the domain is tainted custom-monitor for the rest of its run, as in libvirt."""
        _check_flags(flags, MONITOR_COMMAND_HMP, "qemuDomainQemuMonitorCommandWithFiles")
        obj = await self._obj(dom)
        async with self._job(obj):
            if not obj.is_active():
                raise not_running()
            rt = runtime_of(obj)
            if "custom-monitor" not in rt.taints:
                rt.taints.append("custom-monitor")
                self.processes.save_status(obj)
            assert rt.monitor is not None
            return await rt.monitor.arbitrary(cmd, hmp=bool(flags & MONITOR_COMMAND_HMP))

    async def node_get_security_model(self) -> tuple[str, str]:
        """No security driver labels QEMU here (libvirt's security_driver = "none"): model none, DOI 0."""
        return "none", "0"

    async def domain_get_security_label(self, dom: DomainRef) -> tuple[str, bool]:
        """The "none" security driver gives every process an empty, non-enforcing label."""
        await self._obj(dom)
        return "", False

    async def domain_open_console(self, dom: DomainRef, dev_name: str | None, flags: int = 0) -> ConsoleStream:
        """The console's pty as a stream; one session at a time unless FORCE takes it over (libvirt's
        virChrdevOpen)."""
        _check_flags(flags, CONSOLE_FORCE | CONSOLE_SAFE, "qemuDomainOpenConsole")
        obj = await self._obj(dom)
        async with self._job(obj):
            check_active(obj)
            label = defs.console_chardev(obj.current, dev_name)
            rt = runtime_of(obj)
            path = rt.ptys.get(label) if label is not None else None
            if label is None or path is None:
                raise Error(ErrorCode.INTERNAL_ERROR, f"cannot find character device {dev_name or '<null>'}")
            current = rt.consoles.get(label)
            if current is not None and not current.closed:
                if not flags & CONSOLE_FORCE:
                    raise Error(ErrorCode.OPERATION_FAILED, "Active console session exists for this domain")
                await current.close()
            console = rt.consoles[label] = await PtyConsole.open(path)
            return console
