"""Typed QMP calls over qemu.qmp, and QEMU's events handed in order to one callback, then EOF.

libvirt's qemu_monitor.c role: the process code registers `on_event(name, data)` and `on_eof()`; events
queued before QEMU hung up are all delivered before `on_eof`, so a SHUTDOWN is never lost to the EOF.
QMP errors become VirtErrors (VIR_ERR_INTERNAL_ERROR with QEMU's description, as libvirt reports them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from qemu.qmp import ExecuteError, Message, QMPClient, QMPError, Runstate

from virtstack.common.log import kv
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError, error_factory

Error = error_factory(ErrorDomain.QEMU)
log = logging.getLogger(__name__)

#: how long a QMP command may go unanswered (a stopped or wedged QEMU) before the caller gets an error
COMMAND_TIMEOUT = 30.0
#: how long closing the connection may take (a flush to a QEMU that no longer reads must not block)
CLOSE_TIMEOUT = 2.0

EventHandler = Callable[[str, Mapping[str, Any]], Awaitable[None]]
EofHandler = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class ChardevInfo:
    """One entry of query-chardev: `filename` is e.g. "pty:/dev/pts/3" or "unix:/path,server=on"."""

    label: str
    filename: str
    frontend_open: bool

    @property
    def pty_path(self) -> str | None:
        return self.filename.removeprefix("pty:") if self.filename.startswith("pty:") else None


@contextlib.contextmanager
def short_socket_path(path: str) -> Iterator[str]:
    """A name for a UNIX socket that fits sun_path (108 bytes) however deep its directory is.

    Long state directories (pytest's tmp_path, deep roots) would overflow it; the directory is then
    reached through /proc/self/fd/N while the fd stays open.
    """
    if len(os.fsencode(path)) < 100:
        yield path
        return
    directory, name = os.path.split(path)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{name}"
    finally:
        os.close(fd)


class Monitor:
    """One QMP connection to one QEMU process."""

    def __init__(
        self, name: str, on_event: EventHandler, on_eof: EofHandler, *, timeout: float = COMMAND_TIMEOUT
    ) -> None:
        self._client = QMPClient(name)
        #: seconds one command may wait for QEMU's reply
        self.timeout = timeout
        self._on_event = on_event
        self._on_eof = on_eof
        self._pump: asyncio.Task[None] | None = None
        self._closing = False
        self._delivering = False
        self._getter: asyncio.Future[Any] | None = None
        self._peer_gone = asyncio.Event()
        #: ids of qemu-monitor-command messages ("libvirt-N", as libvirt numbers its own)
        self._arbitrary_ids = 0

    async def connect(self, socket_path: str) -> None:
        """Connect, negotiate capabilities (done by qemu.qmp), then start delivering events."""
        try:
            with short_socket_path(socket_path) as usable:
                await self._client.connect(usable)
        except (QMPError, OSError) as e:
            raise Error(ErrorCode.INTERNAL_ERROR, f"cannot connect to monitor {socket_path}: {e}") from e
        self._pump = asyncio.create_task(self._run(), name=f"qmp-events-{self._client.name}")

    async def _run(self) -> None:
        """Deliver events as they come; after QEMU hangs up, the rest of the queue, then EOF."""
        events = self._client.events
        while True:
            getter = self._getter = asyncio.ensure_future(events.get())
            state = asyncio.ensure_future(self._wait_disconnecting())
            try:
                done, _ = await asyncio.wait({getter, state}, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                # close(): the two waits must not outlive the pump (pending tasks at loop shutdown)
                getter.cancel()
                state.cancel()
                raise
            if getter in done:
                state.cancel()
                await self._deliver(getter.result())
                continue
            getter.cancel()  # a no-op if an event arrived meanwhile: it is delivered below
            try:
                last = [await getter]
            except asyncio.CancelledError:
                last = []
            self._getter = None
            for msg in [*last, *events.clear()]:
                await self._deliver(msg)
            break
        with contextlib.suppress(Exception):
            await self._client.disconnect()
        self._peer_gone.set()
        if not self._closing:
            await self._on_eof()

    async def _wait_disconnecting(self) -> None:
        while self._client.runstate not in (Runstate.DISCONNECTING, Runstate.IDLE):
            await self._client.runstate_changed()

    async def _deliver(self, msg: Mapping[str, Any]) -> None:
        name = str(msg.get("event", ""))
        data = msg.get("data") or {}
        log.debug("qmp event", extra=kv(monitor=self._client.name, event=name))
        self._delivering = True
        try:
            await self._on_event(name, data)
        except Exception:
            log.exception("event handler failed", extra=kv(monitor=self._client.name, event=name))
        finally:
            self._delivering = False

    async def _drain(self) -> None:
        """Wait until every event QEMU sent before the last reply has been handled.

        QEMU sends a command's events (STOP for `stop`, ...) before its reply; libvirt handles monitor
        messages in order, so a caller sees the state those events set. Handlers that run commands
        themselves (inside the pump) skip this, or they would wait for themselves.
        """
        pump = self._pump
        if pump is None or asyncio.current_task() is pump:
            return
        def pending() -> bool:
            taken = self._getter is not None and self._getter.done()  # fetched, not yet delivered
            return self._delivering or taken or not self._client.events.empty()

        while pending() and not pump.done():
            await asyncio.sleep(0.001)

    async def wait_peer_gone(self, timeout: float) -> bool:
        """Wait until QEMU hung up and every event it sent before was handled; False on timeout."""
        try:
            await asyncio.wait_for(self._peer_gone.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Drop the connection without reporting EOF (the driver is going away, QEMU stays)."""
        self._closing = True
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pump
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._client.disconnect(), CLOSE_TIMEOUT)

    async def execute(self, cmd: str, args: Mapping[str, object] | None = None) -> Any:
        """One QMP command; QEMU's error description becomes libvirt's internal error.

        A reply that does not come within `timeout` is VIR_ERR_OPERATION_TIMEOUT, so a hung QEMU costs
        its caller (and the domain's lock) a bounded wait; a late reply is dropped by qemu.qmp.
        """
        try:
            reply = await asyncio.wait_for(self._client.execute(cmd, args), self.timeout)
            await self._drain()
            return reply
        except TimeoutError:
            log.warning("qmp command timed out", extra=kv(monitor=self._client.name, command=cmd, timeout=self.timeout))
            raise Error(
                ErrorCode.OPERATION_TIMEOUT, f"QEMU did not reply to monitor command '{cmd}' in {self.timeout:g} s"
            ) from None
        except ExecuteError as e:
            raise Error(ErrorCode.INTERNAL_ERROR, f"unable to execute QEMU command '{cmd}': {e}") from e
        except (QMPError, OSError, EOFError) as e:
            raise Error(ErrorCode.OPERATION_FAILED, f"monitor connection to QEMU lost during '{cmd}'") from e

    # -- typed calls ---------------------------------------------------------------------------------
    async def cont(self) -> None:
        await self.execute("cont")

    async def stop(self) -> None:
        await self.execute("stop")

    async def system_powerdown(self) -> None:
        await self.execute("system_powerdown")

    async def system_reset(self) -> None:
        await self.execute("system_reset")

    async def quit(self) -> None:
        await self.execute("quit")

    async def query_status(self) -> tuple[bool, str]:
        """(running, QEMU's run state name such as "prelaunch", "running", "paused", "shutdown")."""
        reply = await self.execute("query-status")
        return bool(reply["running"]), str(reply["status"])

    async def query_chardev(self) -> list[ChardevInfo]:
        reply = await self.execute("query-chardev")
        return [ChardevInfo(c["label"], c["filename"], bool(c.get("frontend-open", False))) for c in reply]

    async def arbitrary(self, command: str, *, hmp: bool = False) -> str:
        """`virsh qemu-monitor-command` (qemuMonitorArbitraryCommand): a QMP command given as JSON text,
        answered with QEMU's whole reply as compact JSON, an error reply included; or, with `hmp`, a
        human monitor command line answered with its output text."""
        if hmp:
            return str(await self.execute("human-monitor-command", {"command-line": command}))
        try:
            parsed = json.loads(command)
        except ValueError as e:
            raise VirtError(ErrorCode.INTERNAL_ERROR, f"cannot parse json {command}: {e}") from None
        if not isinstance(parsed, dict) or "execute" not in parsed:
            raise VirtError(ErrorCode.INTERNAL_ERROR, f"cannot parse json {command}: not a QMP command")
        msg = Message(parsed)
        self._arbitrary_ids += 1
        msg["id"] = f"libvirt-{self._arbitrary_ids}"  # our id, like libvirt's; qemu.qmp keeps its own apart
        try:
            # qemu.qmp's _execute (documented for callers that set the id) gives QEMU's whole reply,
            # an error reply included, where execute_msg would keep only the return value
            reply = dict(await asyncio.wait_for(self._client._execute(msg, assign_id=False), self.timeout))
        except TimeoutError:
            raise Error(
                ErrorCode.OPERATION_TIMEOUT, f"QEMU did not reply to monitor command in {self.timeout:g} s"
            ) from None
        except (QMPError, OSError, EOFError) as e:
            raise Error(ErrorCode.OPERATION_FAILED, "monitor connection to QEMU lost") from e
        await self._drain()
        return json.dumps(reply, separators=(",", ":"))

    async def set_action(self, **actions: str) -> None:
        """QEMU's `set-action` (reboot/shutdown/panic/watchdog): how the machine reacts to guest requests."""
        await self.execute("set-action", {k.replace("_", "-"): v for k, v in actions.items()})
