"""QEMU process lifecycle (libvirt's qemu_process.c): launch, monitor events, stop, reconnect.

Launch follows libvirt: the monitor socket is bound by us and passed to QEMU as a listening fd, QEMU is
exec'd directly (no shell) with vCPUs stopped (-S), we connect QMP, read the console ptys, write the
status file, then `cont`. Stop is SIGTERM, then SIGKILL after a grace period. Monitor events update
state + reason and publish lifecycle events; monitor EOF without a prior SHUTDOWN means QEMU crashed.
A new driver reconnects to every domain in the status directory whose QEMU still answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from virtstack.common.atomic import write_atomic
from virtstack.common.log import kv
from virtstack.virt.domain_obj import DomainList, DomainObj, not_running
from virtstack.virt.drivers.base import (
    DomainRef,
    DomainState,
    LifecycleEvent,
    PausedReason,
    ResumedDetail,
    RunningReason,
    ShutdownDetail,
    ShutdownReason,
    ShutoffReason,
    StartedDetail,
    StoppedDetail,
    SuspendedDetail,
)
from virtstack.virt.drivers.qemu.command.model import QemuCommand, RuntimeContext
from virtstack.virt.drivers.qemu.config import QemuDriverConfig
from virtstack.virt.drivers.qemu.console import PtyConsole
from virtstack.virt.drivers.qemu.monitor import COMMAND_TIMEOUT, Monitor, short_socket_path
from virtstack.virt.drivers.qemu.state import DriverState, StatusRecord
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError, error_factory

Error = error_factory(ErrorDomain.QEMU)
log = logging.getLogger(__name__)

#: how long connecting to a new QEMU's monitor may take
CONNECT_TIMEOUT = 30.0
#: libvirt's qemuProcessKill waits 10 s after SIGTERM before SIGKILL
TERM_GRACE = 10.0
KILL_WAIT = 5.0


class ProcessOwner(Protocol):
    """What the process code needs from its driver (kept narrow so it can be tested alone)."""

    domains: DomainList[Any]
    state: DriverState
    config: QemuDriverConfig

    def build_command(self, defn: Any, runtime: RuntimeContext) -> QemuCommand: ...

    def format_live(self, obj: DomainObj[Any]) -> str: ...

    def record_ptys(self, defn: Any, ptys: dict[str, str]) -> None: ...

    def lifecycle_actions(self, defn: Any) -> tuple[str, str]:
        """(on_poweroff, on_reboot) of a definition, libvirt's names ("destroy", "restart", ...)."""
        ...

    def publish(self, ref: DomainRef, event: LifecycleEvent, detail: int) -> None: ...

    def taints(self, defn: Any) -> list[str]:
        """libvirt's taint flags for a run of `defn` (reported by virDomainGetMessages while it runs)."""
        ...

    def record_balloon(self, obj: DomainObj[Any], current_kib: int) -> None:
        """The guest's balloon settled at `current_kib`: the live <currentMemory> and the status file."""
        ...

    def cpu_affinity(self, defn: Any) -> tuple[list[set[int]], set[int]] | None:
        """(per-vCPU CPUs, emulator CPUs) when `defn` pins anything, else None (QEMU may use every CPU)."""
        ...


@dataclass
class QemuRuntime:
    """What exists only while a domain's QEMU runs (libvirt's qemuDomainObjPrivate, in part)."""

    pid: int
    monitor_path: str
    lib_dir: Path
    run_dir: Path
    log_path: Path
    emulator: str = ""
    #: where this run's QEMU output starts in the log file (error reports quote only this run)
    log_offset: int = 0
    popen: subprocess.Popen[bytes] | None = None
    monitor: Monitor | None = None
    ptys: dict[str, str] = field(default_factory=dict)
    #: why this run is tainted (libvirt's flag names), set at start, kept in the status file
    taints: list[str] = field(default_factory=list)
    #: cpu-index -> vCPU thread id (None: not asked yet; empty: QEMU's ids cannot be used)
    vcpu_threads: dict[int, int] | None = None
    #: where unix channels without a path get their sockets (libvirt's channel target dir of the run)
    channel_dir: Path | None = None
    #: open console sessions by chardev label (libvirt allows one per console)
    consoles: dict[str, PtyConsole] = field(default_factory=dict)
    got_shutdown: bool = False
    being_destroyed: bool = False
    #: asked for by domain_reboot: the next guest SHUTDOWN resets the machine instead of stopping it
    fake_reboot: bool = False
    #: a fake reboot is under way: QEMU's STOP and RESUME are ours, until that RESUME arrives
    rebooting: bool = False
    #: the reason the next RESUME/STOP from QEMU stands for (libvirt's runningReason / pausedReason)
    running_reason: RunningReason = RunningReason.UNKNOWN
    paused_reason: PausedReason = PausedReason.UNKNOWN


def runtime_of(obj: DomainObj[Any]) -> QemuRuntime:
    rt = obj.runtime.get("qemu")
    if not isinstance(rt, QemuRuntime):
        raise Error(ErrorCode.OPERATION_INVALID, "domain is not running")
    return rt


def vcpu_threads(reply: Iterable[Mapping[str, Any]], pid: int) -> dict[int, int]:
    """cpu-index -> thread-id from `query-cpus-fast`; empty where the ids are useless.

    libvirt's qemuDomainRefreshVcpuInfo: TCG without MTTCG reports the emulator's pid or one thread
    for several vCPUs; pinning or timing those would be wrong, so it keeps no thread ids at all.
    """
    threads: dict[int, int] = {}
    for cpu in reply:
        tid = int(cpu.get("thread-id", 0))
        if tid == pid or (tid and tid in threads.values()):
            return {}
        threads[int(cpu["cpu-index"])] = tid
    return threads if any(threads.values()) else {}


async def refresh_vcpu_threads(rt: QemuRuntime) -> dict[int, int]:
    """The vCPU threads of this run, asked of QEMU once (libvirt's qemuDomainRefreshVcpuInfo)."""
    if rt.vcpu_threads is None:
        assert rt.monitor is not None
        rt.vcpu_threads = vcpu_threads(await rt.monitor.execute("query-cpus-fast"), rt.pid)
    return rt.vcpu_threads


def set_cpu_affinity(rt: QemuRuntime, vcpu_pins: list[set[int]], emulator: set[int]) -> None:
    """libvirt's qemuProcessSetupEmulator + qemuProcessSetupVcpus without cgroups: every QEMU thread
    gets the emulator's CPUs, then each vCPU thread its own (threads QEMU makes later inherit from the
    thread that makes them, which is not a vCPU)."""
    vcpu_of = {tid: index for index, tid in (rt.vcpu_threads or {}).items()}
    try:
        threads = sorted(int(t) for t in os.listdir(f"/proc/{rt.pid}/task"))
    except OSError as e:
        raise Error(ErrorCode.SYSTEM_ERROR, f"cannot list threads of process {rt.pid}: {e.strerror}") from e
    for tid in threads:
        index = vcpu_of.get(tid)
        cpus = vcpu_pins[index] if index is not None and index < len(vcpu_pins) else emulator
        try:
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:
            continue  # a thread that ended meanwhile
        except OSError as e:
            raise Error(ErrorCode.SYSTEM_ERROR, f"cannot set CPU affinity on process {tid}: {e.strerror}") from e


# -- process helpers ------------------------------------------------------------------------------------
def pid_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie or a reaped pid counts as gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in (b"Z", b"X", b"x")


def pid_cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


@dataclass(frozen=True)
class StatInfo:
    """What libvirt's virProcessGetStatInfo reads from a process's or thread's stat file."""

    user_ns: int
    system_ns: int
    last_cpu: int
    rss_kib: int

    @property
    def cpu_time_ns(self) -> int:
        return self.user_ns + self.system_ns


def parse_stat(text: str, clock_ticks: int, page_kib: int) -> StatInfo:
    """Fields of proc(5)'s stat line: utime (14), stime (15), rss (24, pages), processor (39)."""
    fields = text[text.rfind(")") + 2 :].split()  # fields from 3 (state) on; comm may hold spaces
    per_tick = 1_000_000_000 // clock_ticks
    return StatInfo(int(fields[11]) * per_tick, int(fields[12]) * per_tick, int(fields[36]), int(fields[21]) * page_kib)


def read_stat(pid: int, tid: int = 0) -> StatInfo:
    """/proc/PID/stat, or /proc/PID/task/TID/stat for one thread (OSError once it is gone)."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    with open(path) as f:
        text = f.read()
    return parse_stat(text, os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGESIZE") // 1024)


def cpu_time_ns(pid: int) -> int:
    """utime + stime of `pid` in nanoseconds (what libvirt reports without cgroups); 0 once it is gone."""
    try:
        return read_stat(pid).cpu_time_ns
    except OSError:
        return 0


async def wait_pid_exit(rt: QemuRuntime, timeout: float) -> bool:
    """Wait for QEMU to exit (reaping it when we are its parent); True if it did in time."""
    deadline = time.monotonic() + timeout
    while True:
        if rt.popen is not None:
            if rt.popen.poll() is not None:
                return True
        elif not pid_alive(rt.pid):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.02)


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _log_tail(path: Path, offset: int = 0, limit: int = 1024) -> str:
    """What QEMU wrote to its log since `offset` (its own error lines), at most `limit` characters."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return text[-limit:].strip()


# -- the manager ----------------------------------------------------------------------------------------
class ProcessManager:
    """Starts, watches and stops the QEMU processes of one driver."""

    def __init__(self, owner: ProcessOwner) -> None:
        self.owner = owner
        #: seconds a QMP command may go unanswered (each new monitor takes this value)
        self.monitor_timeout = COMMAND_TIMEOUT
        #: seconds between SIGTERM and SIGKILL when destroying
        self.term_grace = TERM_GRACE

    # launch -------------------------------------------------------------------------------------------
    async def start(self, obj: DomainObj[Any], defn: Any, *, paused: bool = False) -> None:
        """Launch QEMU for `obj` from definition `defn` (the caller holds obj.lock, obj inactive)."""
        owner = self.owner
        dom_id = owner.domains.allocate_id()
        ctx = RuntimeContext.for_domain(obj.name, dom_id, owner.config)
        lib_dir, run_dir = Path(ctx.lib_dir), Path(ctx.runtime_dir)
        channel_dir = Path(owner.config.domain_dir(owner.config.channel_target_dir, dom_id, obj.name))
        for d in (lib_dir, run_dir, channel_dir):
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True, mode=0o700)
        if owner.config.master_key:
            # libvirt's per-run master key (-object secret,id=masterKey0,file=...): 32 random bytes
            write_atomic(lib_dir / "master-key.aes", os.urandom(32), mode=0o600)
        monitor_path = str(lib_dir / "monitor.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with short_socket_path(monitor_path) as bindable:
                listener.bind(bindable)
            listener.listen(1)
            ctx.monitor_path = None
            ctx.monitor_fd = listener.fileno()
            command = owner.build_command(defn, ctx)
            log_path = Path(owner.state.layout.log_dir) / f"{obj.name}.log"
            rt = QemuRuntime(pid=0, monitor_path=monitor_path, lib_dir=lib_dir, run_dir=run_dir, log_path=log_path,
                             channel_dir=channel_dir)
            rt.emulator = command.argv[0]
            rt.taints = owner.taints(defn)
            rt.popen, rt.log_offset = self._spawn(command, log_path, listener.fileno())
            rt.pid = rt.popen.pid
        except BaseException:
            listener.close()
            self._remove_dirs(lib_dir, run_dir, channel_dir)
            raise
        listener.close()  # QEMU holds its own copy of the listening socket
        obj.runtime["qemu"] = rt
        obj.id = dom_id
        obj.live = defn
        obj.set_state(DomainState.PAUSED, PausedReason.STARTING_UP)
        log.info("qemu started", extra=kv(domain=obj.name, id=dom_id, pid=rt.pid))
        try:
            rt.monitor = await self._connect(obj, rt)
            affinity = owner.cpu_affinity(defn)
            if affinity is not None:
                await refresh_vcpu_threads(rt)
                set_cpu_affinity(rt, *affinity)
            await self._read_ptys(rt)
            owner.record_ptys(defn, rt.ptys)
            if owner.lifecycle_actions(defn)[1] == "destroy":
                # libvirt's qemuProcessSetupLifecycleActions: a guest reset becomes a SHUTDOWN
                await rt.monitor.set_action(reboot="shutdown")
            if paused:
                obj.set_state(DomainState.PAUSED, PausedReason.USER)
            else:
                # QEMU's RESUME makes it running/booted (and libvirt's RESUMED event, before STARTED)
                await self.start_cpus(obj, RunningReason.BOOTED)
            self.save_status(obj)
        except BaseException:
            await self._kill(rt)
            self._cleanup(obj, ShutoffReason.FAILED)
            raise
        owner.publish(obj.ref(), LifecycleEvent.STARTED, StartedDetail.BOOTED)
        if paused:
            owner.publish(obj.ref(), LifecycleEvent.SUSPENDED, SuspendedDetail.PAUSED)

    async def start_cpus(self, obj: DomainObj[Any], reason: RunningReason) -> None:
        """`cont`, with QEMU's RESUME event (handled before this returns) making the state change."""
        rt = runtime_of(obj)
        assert rt.monitor is not None
        rt.running_reason = reason
        try:
            await rt.monitor.cont()
        finally:
            rt.running_reason = RunningReason.UNKNOWN
        if obj.state != DomainState.RUNNING:  # no RESUME seen: take QEMU's word for it, quietly
            obj.set_state(DomainState.RUNNING, reason)

    async def stop_cpus(self, obj: DomainObj[Any], reason: PausedReason) -> None:
        """`stop`, with QEMU's STOP event (handled before this returns) making the state change."""
        rt = runtime_of(obj)
        assert rt.monitor is not None
        rt.paused_reason = reason
        try:
            await rt.monitor.stop()
        finally:
            rt.paused_reason = PausedReason.UNKNOWN
        if obj.state == DomainState.RUNNING:
            obj.set_state(DomainState.PAUSED, reason)

    def _spawn(
        self, command: QemuCommand, log_path: Path, monitor_fd: int
    ) -> tuple[subprocess.Popen[bytes], int]:
        """Exec QEMU (no shell) with its output appended to the domain log; returns it and the log offset."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as logf:
            header = f"{time.strftime('%Y-%m-%d %H:%M:%S')}: starting up\n{command.to_shell_line()}\n"
            logf.write(header.encode())
            logf.flush()
            offset = logf.tell()
            try:
                proc = subprocess.Popen(
                    command.argv,
                    env=command.env,
                    stdin=subprocess.DEVNULL,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    pass_fds=[monitor_fd, *command.pass_fds],
                    start_new_session=True,  # a restarted driver must not take its guests down with it
                )
            except OSError as e:
                raise Error(
                    ErrorCode.SYSTEM_ERROR, f"Cannot execute '{command.argv[0]}': {e.strerror}"
                ) from e
        return proc, offset

    async def _connect(self, obj: DomainObj[Any], rt: QemuRuntime) -> Monitor:
        monitor = Monitor(
            obj.name, lambda n, d: self.on_event(obj, n, d), lambda: self.on_eof(obj), timeout=self.monitor_timeout
        )
        try:
            await asyncio.wait_for(monitor.connect(rt.monitor_path), CONNECT_TIMEOUT)
        except (VirtError, TimeoutError) as e:
            if rt.popen is not None and await wait_pid_exit(rt, 3.0):
                tail = _log_tail(rt.log_path, rt.log_offset)
                raise Error(ErrorCode.INTERNAL_ERROR, f"qemu unexpectedly closed the monitor: {tail}") from e
            raise Error(ErrorCode.INTERNAL_ERROR, f"cannot connect to QEMU monitor: {e}") from e
        return monitor

    async def _read_ptys(self, rt: QemuRuntime) -> None:
        assert rt.monitor is not None
        rt.ptys = {c.label: p for c in await rt.monitor.query_chardev() if (p := c.pty_path)}

    # status -------------------------------------------------------------------------------------------
    def save_status(self, obj: DomainObj[Any]) -> None:
        rt = runtime_of(obj)
        extra = {
            "log": str(rt.log_path),
            "libdir": str(rt.lib_dir),
            "rundir": str(rt.run_dir),
            **({"channeldir": str(rt.channel_dir)} if rt.channel_dir else {}),
            "emulator": rt.emulator,
        }
        if rt.taints:
            extra["taints"] = ",".join(rt.taints)
        extra.update({f"pty-{label}": path for label, path in rt.ptys.items()})
        self.owner.state.save_status(
            StatusRecord(
                name=obj.name,
                domain_id=obj.id,
                pid=rt.pid,
                state=obj.state,
                reason=obj.reason,
                monitor_path=rt.monitor_path,
                live_xml=self.owner.format_live(obj),
                persistent=obj.persistent,
                extra=extra,
            )
        )

    # monitor callbacks --------------------------------------------------------------------------------
    async def on_event(self, obj: DomainObj[Any], name: str, data: Mapping[str, Any]) -> None:
        """QMP events -> state, reason and lifecycle events (libvirt's qemuProcessHandle*)."""
        rt = obj.runtime.get("qemu")
        if not isinstance(rt, QemuRuntime):
            return
        owner = self.owner
        if name == "SHUTDOWN":
            await self._handle_shutdown(obj, rt, bool(data.get("guest", False)))
        elif rt.being_destroyed:
            return
        elif name == "STOP":
            # libvirt's qemuProcessHandleStop: a fake reboot's pause is not shown
            reason, rt.paused_reason = rt.paused_reason, PausedReason.UNKNOWN
            if obj.state == DomainState.RUNNING and not rt.rebooting:
                obj.set_state(DomainState.PAUSED, reason)
                self.save_status(obj)
                owner.publish(obj.ref(), LifecycleEvent.SUSPENDED, SuspendedDetail.PAUSED)
        elif name == "RESUME":
            # libvirt's qemuProcessHandleResume: any resume of a non-running domain is an event,
            # the first cont of a start included (so RESUMED precedes STARTED, as in libvirt)
            running = rt.running_reason if rt.running_reason != RunningReason.UNKNOWN else RunningReason.UNPAUSED
            rt.running_reason = RunningReason.UNKNOWN
            if rt.rebooting:
                rt.rebooting = False
            elif obj.state != DomainState.RUNNING and obj.state != DomainState.SHUTDOWN:
                obj.set_state(DomainState.RUNNING, running)
                self.save_status(obj)
                owner.publish(obj.ref(), LifecycleEvent.RESUMED, ResumedDetail.UNPAUSED)
        elif name == "POWERDOWN":
            log.debug("guest power button pressed", extra=kv(domain=obj.name))
        elif name == "BALLOON_CHANGE" and isinstance(data.get("actual"), int):
            owner.record_balloon(obj, int(data["actual"]) // 1024)  # libvirt's qemuProcessHandleBalloonChange

    async def _handle_shutdown(self, obj: DomainObj[Any], rt: QemuRuntime, guest: bool) -> None:
        owner = self.owner
        if rt.got_shutdown or not obj.is_active():
            return  # QEMU repeats SHUTDOWN when we SIGTERM it after a guest poweroff
        on_poweroff = owner.lifecycle_actions(obj.current)[0]
        if rt.being_destroyed:
            # our own SIGTERM of a destroy: libvirt still reports it (SHUTDOWN/HOST before STOPPED)
            rt.got_shutdown = True
            obj.set_state(DomainState.SHUTDOWN, ShutdownReason.UNKNOWN)
            owner.publish(obj.ref(), LifecycleEvent.SHUTDOWN, ShutdownDetail.GUEST if guest else ShutdownDetail.HOST)
            return
        if rt.fake_reboot or on_poweroff == "restart":
            # the guest's poweroff is the first half of a reboot: no state change, no event
            rt.fake_reboot = False
            await self._fake_reboot(obj, rt)
            return
        rt.got_shutdown = True
        obj.set_state(DomainState.SHUTDOWN, ShutdownReason.UNKNOWN)
        self.save_status(obj)
        owner.publish(obj.ref(), LifecycleEvent.SHUTDOWN, ShutdownDetail.GUEST if guest else ShutdownDetail.HOST)
        if on_poweroff != "preserve":
            _signal(rt.pid, signal.SIGTERM)  # QEMU exits; the monitor EOF finishes the stop

    async def _fake_reboot(self, obj: DomainObj[Any], rt: QemuRuntime) -> None:
        """libvirt's qemuProcessFakeReboot: reset the stopped machine and let it run again.

        Like libvirt, the domain stays `running` throughout (reason `booted` afterwards) and no
        lifecycle event is sent; QEMU's own STOP/RESUME around it are swallowed.
        """
        assert rt.monitor is not None
        was_paused = obj.state == DomainState.PAUSED
        rt.rebooting = not was_paused
        await rt.monitor.system_reset()
        if not was_paused:
            obj.set_state(DomainState.RUNNING, RunningReason.BOOTED)
            await rt.monitor.cont()  # inside the event pump: its RESUME is handled after we return
        self.save_status(obj)

    async def on_eof(self, obj: DomainObj[Any]) -> None:
        """QEMU hung up: it shut down after a SHUTDOWN event, or it crashed."""
        async with obj.lock:
            rt = obj.runtime.get("qemu")
            if not isinstance(rt, QemuRuntime) or rt.being_destroyed or not obj.is_active():
                return
            rt.monitor = None
            if rt.got_shutdown:
                detail, reason = StoppedDetail.SHUTDOWN, ShutoffReason.SHUTDOWN
            else:
                log.warning("monitor closed without SHUTDOWN; QEMU crashed", extra=kv(domain=obj.name))
                detail, reason = StoppedDetail.FAILED, ShutoffReason.CRASHED
            if not await wait_pid_exit(rt, self.term_grace):
                await self._kill(rt)
            ref = obj.ref()  # events carry the id the domain had (libvirt builds them before the stop)
            self._cleanup(obj, reason)
            self.owner.publish(ref, LifecycleEvent.STOPPED, detail)

    # stop ---------------------------------------------------------------------------------------------
    async def kill(self, obj: DomainObj[Any], *, graceful: bool = False) -> QemuRuntime:
        """First half of destroy, run WITHOUT obj.lock (libvirt's qemuProcessBeginStopJob): SIGTERM,
        then SIGKILL after `term_grace`. A job stuck on this QEMU (a monitor call to a hung process)
        then fails at once and frees the lock that `finish_destroy` needs."""
        rt = runtime_of(obj)
        rt.being_destroyed = True
        rt.fake_reboot = False
        _signal(rt.pid, signal.SIGTERM)
        if not await wait_pid_exit(rt, self.term_grace):
            if graceful:
                rt.being_destroyed = False
                raise Error(ErrorCode.OPERATION_FAILED, f"failed to kill qemu process with SIGTERM: {obj.name}")
            _signal(rt.pid, signal.SIGKILL)
            if not await wait_pid_exit(rt, KILL_WAIT):
                log.error("qemu did not exit after SIGKILL", extra=kv(domain=obj.name, pid=rt.pid))
        return rt

    async def finish_destroy(self, obj: DomainObj[Any], rt: QemuRuntime) -> None:
        """Second half of destroy, under obj.lock (libvirt's qemuProcessStop): reason DESTROYED, event
        STOPPED/DESTROYED. `rt` is the run `kill` ended; if another path already cleaned it up, or a new
        run began meanwhile, the domain is not running as far as this destroy is concerned."""
        if obj.runtime.get("qemu") is not rt or not obj.is_active():
            raise not_running()
        if rt.monitor is not None:
            # QEMU announced its SIGTERM with a SHUTDOWN before hanging up: let the pump hand it over
            await rt.monitor.wait_peer_gone(KILL_WAIT)
            await rt.monitor.close()
            rt.monitor = None
        ref = obj.ref()
        self._cleanup(obj, ShutoffReason.DESTROYED)
        self.owner.publish(ref, LifecycleEvent.STOPPED, StoppedDetail.DESTROYED)

    async def _kill(self, rt: QemuRuntime) -> None:
        rt.being_destroyed = True
        if rt.monitor is not None:
            await rt.monitor.close()
            rt.monitor = None
        _signal(rt.pid, signal.SIGKILL)
        if not await wait_pid_exit(rt, KILL_WAIT):
            log.error("qemu did not exit after SIGKILL", extra=kv(pid=rt.pid))

    def _cleanup(self, obj: DomainObj[Any], reason: ShutoffReason) -> None:
        """libvirt's qemuProcessStop after the process is gone: files, ids, live definition, list."""
        rt = obj.runtime.pop("qemu", None)
        if isinstance(rt, QemuRuntime):
            for console in rt.consoles.values():
                console.close_now()
            self._remove_dirs(rt.lib_dir, rt.run_dir, *([rt.channel_dir] if rt.channel_dir else []))
        self.owner.state.delete_status(obj.name)
        obj.id = -1
        obj.live = None
        obj.set_state(DomainState.SHUTOFF, reason)
        if not obj.persistent or obj.removing:
            self.owner.domains.remove(obj)

    @staticmethod
    def _remove_dirs(*dirs: Path) -> None:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)

    # reconnect ----------------------------------------------------------------------------------------
    async def reconnect(self, record: StatusRecord, obj: DomainObj[Any]) -> None:
        """Take over a QEMU left by a previous driver, or mark the domain crashed if it is gone.

        As libvirt's qemuProcessReconnect, a domain whose monitor cannot be reached is stopped with
        reason `crashed` (QEMU runs with -no-shutdown) and no lifecycle event is sent.
        """
        lib_dir = Path(record.extra.get("libdir", Path(record.monitor_path).parent))
        rt = QemuRuntime(
            pid=record.pid,
            monitor_path=record.monitor_path,
            lib_dir=lib_dir,
            run_dir=Path(record.extra.get("rundir", lib_dir)),
            channel_dir=Path(record.extra["channeldir"]) if "channeldir" in record.extra else None,
            log_path=Path(record.extra.get("log", "")),
            emulator=record.extra.get("emulator", ""),
            ptys={k.removeprefix("pty-"): v for k, v in record.extra.items() if k.startswith("pty-")},
            taints=[t for t in record.extra.get("taints", "").split(",") if t],
        )
        obj.runtime["qemu"] = rt
        obj.id = record.domain_id
        obj.set_state(record.state, record.reason)
        self.owner.domains.note_id(record.domain_id)
        # the pid must still be that QEMU (pids get reused) and its monitor socket must still exist
        cmdline = pid_cmdline(rt.pid) if pid_alive(rt.pid) else []
        ours = bool(cmdline) and cmdline[0] == rt.emulator and os.path.exists(rt.monitor_path)
        if not ours:
            log.warning("qemu gone while the driver was away", extra=kv(domain=obj.name, pid=rt.pid))
            rt.being_destroyed = True
            self._cleanup(obj, ShutoffReason.CRASHED)
            return
        try:
            rt.monitor = await self._connect(obj, rt)
            running, status = await rt.monitor.query_status()
            await self._read_ptys(rt)
            self.owner.record_ptys(obj.current, rt.ptys)
        except VirtError:
            await self._kill(rt)
            self._cleanup(obj, ShutoffReason.CRASHED)
            return
        if status == "shutdown":
            rt.got_shutdown = True
            obj.set_state(DomainState.SHUTDOWN, ShutdownReason.UNKNOWN)
            _signal(rt.pid, signal.SIGTERM)
        elif running and obj.state != DomainState.RUNNING:
            obj.set_state(DomainState.RUNNING, RunningReason.UNPAUSED)
        elif not running and obj.state == DomainState.RUNNING:
            obj.set_state(DomainState.PAUSED, PausedReason.UNKNOWN)
        self.save_status(obj)
        log.info("reconnected", extra=kv(domain=obj.name, id=obj.id, pid=rt.pid))
