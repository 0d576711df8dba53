"""Monitor and PtyConsole against a real QEMU started by hand: events in order, EOF last, console I/O."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from virtstack.testing.guest import MARKER, Guest, qemu_argv, wait_for_text
from virtstack.virt.drivers.qemu.console import PtyConsole
from virtstack.virt.drivers.qemu.monitor import Monitor
from virtstack.virt.errors import ErrorCode, VirtError


async def _read_until(console: PtyConsole, text: bytes, timeout: float = 60) -> bytes:
    seen = b""

    async def loop() -> bytes:
        nonlocal seen
        while text not in seen:
            chunk = await console.read()
            if not chunk:
                break
            seen += chunk
        return seen

    return await asyncio.wait_for(loop(), timeout)


@pytest.mark.qemu
@pytest.mark.timeout(120)
def test_events_console_and_eof(guest: Guest, tmp_path: Path) -> None:
    sock, log = tmp_path / "qmp.sock", tmp_path / "serial.log"
    argv = [
        *qemu_argv(guest),
        "-S", "-no-shutdown",
        "-chardev", f"pty,id=charserial0,logfile={log}",
        "-serial", "chardev:charserial0",
        "-qmp", f"unix:{sock},server=on,wait=on",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    async def scenario() -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
        events: list[tuple[str, dict[str, Any]]] = []
        order: list[str] = []
        eof = asyncio.Event()

        async def on_event(name: str, data: Mapping[str, Any]) -> None:
            events.append((name, dict(data)))
            order.append(name)

        async def on_eof() -> None:
            order.append("EOF")
            eof.set()

        mon = Monitor("t", on_event, on_eof)
        for _ in range(500):
            if sock.exists():
                break
            await asyncio.sleep(0.02)
        await mon.connect(str(sock))
        assert await mon.query_status() == (False, "prelaunch")
        chardevs = {c.label: c for c in await mon.query_chardev()}
        pty = chardevs["charserial0"].pty_path
        assert pty is not None and pty.startswith("/dev/pts/")
        console = await PtyConsole.open(pty)
        await mon.cont()
        assert (await mon.query_status())[0] is True
        await asyncio.to_thread(wait_for_text, log, MARKER, 60)
        # the guest's shell answers on the pty
        await console.write(b"\necho console-$((40+2))\n")
        assert b"console-42" in await _read_until(console, b"console-42")
        with pytest.raises(VirtError) as err:
            await mon.execute("no-such-command")
        assert err.value.code == ErrorCode.INTERNAL_ERROR
        assert "no-such-command" in str(err.value)
        await mon.system_powerdown()
        for _ in range(3000):
            if "SHUTDOWN" in order:
                break
            await asyncio.sleep(0.02)
        proc.terminate()
        await asyncio.wait_for(eof.wait(), 30)
        # QEMU is gone: the console drains what it buffered, then reports end of stream
        async def drain() -> None:
            while await console.read():
                pass

        await asyncio.wait_for(drain(), 10)
        await console.close()
        assert await console.read() == b""
        return events, order

    try:
        events, order = asyncio.run(scenario())
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    names = [n for n, _ in events]
    assert names[0] == "RESUME"
    assert "POWERDOWN" in names
    shutdowns = [d for n, d in events if n == "SHUTDOWN"]
    # the guest's poweroff first, then QEMU's own on SIGTERM
    assert shutdowns[0] == {"guest": True, "reason": "guest-shutdown"}
    assert shutdowns[-1] == {"guest": False, "reason": "host-signal"}
    assert order[-1] == "EOF"
    assert "VIRTSTACK-GUEST-POWEROFF" in log.read_text(errors="replace")


@pytest.mark.qemu
@pytest.mark.timeout(120)
def test_hung_qemu_times_out_and_close_leaves_no_tasks(tmp_path: Path) -> None:
    """A stopped QEMU costs a command `timeout`, not forever; close() leaves nothing pending behind it."""
    import os
    import signal

    from virtstack.virt.drivers.qemu.capabilities import DEFAULT_BINARY

    sock = tmp_path / "qmp.sock"
    argv = [DEFAULT_BINARY, "-M", "none", "-S", "-nodefaults", "-display", "none",
            "-qmp", f"unix:{sock},server=on,wait=on"]  # fmt: skip
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def nothing(*_: Any) -> None:
        return None

    async def scenario() -> None:
        mon = Monitor("hung", nothing, nothing, timeout=0.5)
        for _ in range(500):
            if sock.exists():
                break
            await asyncio.sleep(0.02)
        await mon.connect(str(sock))
        assert await mon.query_status() == (False, "prelaunch")
        os.kill(proc.pid, signal.SIGSTOP)
        with pytest.raises(VirtError) as err:
            await asyncio.wait_for(mon.query_status(), 30)
        assert (err.value.code, str(err.value)) == (
            ErrorCode.OPERATION_TIMEOUT,
            "Timed out during operation: QEMU did not reply to monitor command 'query-status' in 0.5 s",
        )
        os.kill(proc.pid, signal.SIGCONT)
        assert await mon.query_status() == (False, "prelaunch")  # the late reply was dropped, not misrouted
        await mon.close()  # QEMU keeps running, as when a driver goes away
        await asyncio.sleep(0)
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    try:
        asyncio.run(scenario())
    finally:
        proc.kill()
        proc.wait()
