"""The test guest boots under QEMU TCG, prints its marker, runs a command, and obeys the power button."""

from __future__ import annotations

import asyncio
import gzip
import subprocess
from pathlib import Path

import pytest
from qemu.qmp import QMPClient

from virtstack.testing.guest import MARKER, Guest, _cpio_newc, build_guest, qemu_argv, wait_for_text


def test_initramfs_is_cached_by_content(guest: Guest) -> None:
    again = build_guest()
    assert again.initrd == guest.initrd
    archive = gzip.decompress(guest.initrd.read_bytes())
    assert archive.startswith(b"070701")
    assert b"init\0" in archive and MARKER.encode() in archive


def test_cpio_newc_layout() -> None:
    archive = _cpio_newc([("a", 0o100644, b"xyz")])
    assert archive[:6] == b"070701"
    # header (110 bytes) + "a\0" padded to 4, then data padded to 4, then the trailer entry
    assert archive[110:112] == b"a\0" and archive[112:115] == b"xyz"
    assert archive.endswith(b"\0") and b"TRAILER!!!" in archive
    assert len(archive) % 4 == 0


def test_command_line_refuses_quotes(guest: Guest) -> None:
    with pytest.raises(ValueError):
        guest.cmdline_with('echo "x"')


def _start(guest: Guest, tmp_path: Path, run: str | None = None) -> tuple[subprocess.Popen[bytes], Path, Path]:
    log, qmp = tmp_path / "serial.log", tmp_path / "qmp.sock"
    argv = [*qemu_argv(guest, run=run), "-serial", f"file:{log}", "-qmp", f"unix:{qmp},server=on,wait=off"]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL), log, qmp


@pytest.mark.qemu
def test_boots_to_marker_and_runs_command(guest: Guest, tmp_path: Path) -> None:
    proc, log, _ = _start(guest, tmp_path, run="echo from-the-guest $((6*7)); uname -r")
    try:
        text = wait_for_text(log, "VIRTSTACK-GUEST-RUN-EXIT", timeout=90)
    finally:
        proc.kill()
        proc.wait()
    assert f"{MARKER} uptime=" in text
    assert "from-the-guest 42" in text
    assert guest.kernel.name.removeprefix("vmlinuz-") in text
    assert "status=0" in text


@pytest.mark.qemu
def test_acpi_power_button_powers_the_guest_off(guest: Guest, tmp_path: Path) -> None:
    proc, log, qmp = _start(guest, tmp_path)

    async def press_power_button() -> None:
        client = QMPClient("test")
        await client.connect(str(qmp))
        try:
            await client.execute("system_powerdown")
        finally:
            await client.disconnect()

    try:
        wait_for_text(log, MARKER, timeout=90)
        asyncio.run(press_power_button())
        # QEMU exits by itself (no -no-shutdown) once the guest has powered off.
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "VIRTSTACK-GUEST-POWEROFF" in log.read_text(errors="replace")
