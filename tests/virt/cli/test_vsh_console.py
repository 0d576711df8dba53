"""`vsh console` on a real booted guest, side by side with `virsh console`, on a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from vshdiff import VIRSH, VSH, assert_same

from virtstack.testing.guest import Guest, domain_xml, wait_for_text
from virtstack.virt.client import Connection, connect

BANNER = b"Connected to domain 'vscon'\r\nEscape character is ^] (Ctrl + ])\r\n"
ANY_BANNER = b"Escape character is ^] (Ctrl + ])\r\n"


def run_console(argv: list[str], send: bytes, expect: bytes, timeout: float = 30.0) -> tuple[int | None, bytes]:
    """Run a console client on a pty: type `send` after the banner, Ctrl-] once `expect` is seen."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out, sent, detached = b"", False, False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not detached:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    break
                if not data:
                    break
                out += data
            if not sent and ANY_BANNER in out:
                time.sleep(0.5)  # virsh drops what is typed before its stream is set up
                os.write(master, send)
                sent = True
            if sent and expect in out.split(ANY_BANNER, 1)[-1]:
                os.write(master, b"\x1d")
                detached = True
        try:
            status: int | None = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            status = None
    finally:
        os.close(master)
    return status, out


@pytest.fixture
def running_guest(qemu_uri: str, guest: Guest, tmp_path: Path) -> Iterator[tuple[str, Connection]]:
    uri = qemu_uri
    conn = connect(uri)
    log = tmp_path / "serial.log"
    dom = conn.create_xml(domain_xml("vscon", guest, serial_log=log))
    try:
        wait_for_text(log, guest.marker, timeout=60)
        yield uri, conn
    finally:
        dom.destroy()
        conn.close()


@pytest.mark.qemu
def test_console_types_into_the_guest_and_detaches(running_guest: tuple[str, Connection]) -> None:
    uri, _conn = running_guest
    command, answer = b"echo VS-$((6*7))\r", b"VS-42\r\n"
    virsh_status, virsh_out = run_console([VIRSH, "-c", uri, "console", "vscon"], command, answer)
    vsh_status, vsh_out = run_console([*VSH, "-c", uri, "console", "vscon"], command, answer)
    assert virsh_status == 0 and virsh_out.startswith(BANNER) and answer in virsh_out
    assert vsh_status == 0, vsh_out
    assert vsh_out.startswith(BANNER), vsh_out
    assert answer in vsh_out


def test_console_needs_a_running_domain_and_a_tty(fresh_uris: tuple[str, str], tmp_path: Path) -> None:
    xml = tmp_path / "vm2.xml"
    xml.write_text("<domain type='test'><name>vm2</name><memory>65536</memory><os><type>hvm</type></os></domain>")
    assert assert_same([f"define {xml}; console vm2; console test; console nosuch"], fresh_uris).status == 1


def test_console_refused_by_the_driver_prints_under_the_banner(shared_uris: tuple[str, str]) -> None:
    """The test driver has no consoles: both tools print the banner, then libvirt's NO_SUPPORT error."""
    results = [run_console([*tool, "-c", uri, "console", "test"], b"", b"never", timeout=20)
               for tool, uri in (([VIRSH], shared_uris[0]), (VSH, shared_uris[1]))]
    assert results[0] == results[1]
    assert results[0][0] == 1
