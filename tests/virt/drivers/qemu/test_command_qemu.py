"""The built command line runs: real QEMU starts paused from it, resumes over QMP and boots the guest."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from virtstack.testing.guest import Guest, domain_xml, wait_for_text
from virtstack.virt.drivers.qemu.capabilities import probe_qemu_caps
from virtstack.virt.drivers.qemu.command import RuntimeContext, build_command
from virtstack.virt.drivers.qemu.config import QemuDriverConfig
from virtstack.virt.drivers.qemu.defaults import apply_qemu_defaults
from virtstack.virt.xml.domain import parse_domain

QEMU = "/usr/bin/qemu-system-x86_64"


async def _resume_then_quit(sock: str, serial_log: Path, marker: str) -> str:
    from qemu.qmp import QMPClient

    client = QMPClient("argv-test")
    await client.connect(sock)
    try:
        status = await client.execute("query-status")
        assert status["status"] == "prelaunch"  # -S: libvirt starts QEMU paused
        await client.execute("cont")
        return await asyncio.to_thread(wait_for_text, serial_log, marker, 60.0)
    finally:
        with contextlib.suppress(EOFError, ConnectionError):  # QEMU may hang up before answering quit
            await client.execute("quit")
        with contextlib.suppress(EOFError, ConnectionError):
            await client.disconnect()


@pytest.mark.qemu
@pytest.mark.timeout(90)
def test_built_argv_boots_the_test_guest(guest: Guest, tmp_path: Path) -> None:
    if not shutil.which(QEMU):
        pytest.skip(f"{QEMU} is not installed")
    caps = probe_qemu_caps(QEMU, cache_dir=tmp_path / "caps")
    serial_log = tmp_path / "serial.log"
    defn = parse_domain(domain_xml("argv-boot", guest, serial_log=serial_log))
    apply_qemu_defaults(defn, caps)
    config = QemuDriverConfig.system().with_overrides(
        lib_dir=str(tmp_path / "lib"), state_dir=str(tmp_path / "run")
    )
    runtime = RuntimeContext.for_domain("argv-boot", 1, config)
    os.makedirs(runtime.lib_dir)
    Path(runtime.lib_dir, "master-key.aes").write_bytes(os.urandom(32))
    cmd = build_command(defn, caps, config, runtime)
    assert "-S" in cmd.argv and "-kernel" in cmd.argv
    proc = subprocess.Popen(cmd.argv, env=cmd.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        sock = runtime.monitor_path
        assert sock is not None
        for _ in range(600):
            if os.path.exists(sock) or proc.poll() is not None:
                break
            asyncio.run(asyncio.sleep(0.05))
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        log = asyncio.run(_resume_then_quit(sock, serial_log, guest.marker))
        assert guest.marker in log
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


RICH_DEVICES = """
    <disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/>
      <source file='{img}'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><source file='{iso}'/><target dev='sda' bus='sata'/><readonly/></disk>
    <controller type='virtio-serial' index='0'/>
    <interface type='user'><mac address='52:54:00:12:34:56'/><model type='virtio'/></interface>
    <serial type='pty'><target port='0'/></serial>
    <channel type='unix'><source mode='bind' path='{chan}'/><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <input type='tablet' bus='usb'/>
    <graphics type='vnc' socket='{vnc}'/>
    <sound model='ich6'/>
    <video><model type='qxl'/></video>
    <memballoon model='virtio'/>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
"""


async def _peripherals(sock: str) -> tuple[str, set[str]]:
    from qemu.qmp import QMPClient

    client = QMPClient("argv-test")
    await client.connect(sock)
    try:
        status = (await client.execute("query-status"))["status"]
        items = await client.execute("qom-list", {"path": "/machine/peripheral"})
        return status, {i["name"] for i in items}
    finally:
        with contextlib.suppress(EOFError, ConnectionError):
            await client.execute("quit")
        with contextlib.suppress(EOFError, ConnectionError):
            await client.disconnect()


@pytest.mark.qemu
@pytest.mark.timeout(90)
def test_real_qemu_accepts_a_device_rich_command_line(tmp_path: Path) -> None:
    """Every -device/-blockdev/-chardev form the builder writes is one QEMU 7.2 understands."""
    if not shutil.which(QEMU):
        pytest.skip(f"{QEMU} is not installed")
    img, iso = tmp_path / "disk.qcow2", tmp_path / "cd.iso"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(img), "16M"], check=True)
    iso.write_bytes(b"\0" * 2048 * 16)
    devices = RICH_DEVICES.format(img=img, iso=iso, chan=tmp_path / "ga.sock", vnc=tmp_path / "vnc.sock")
    xml = f"""<domain type='qemu'><name>argv-rich</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
      <os><type arch='x86_64' machine='q35'>hvm</type></os><features><acpi/></features>
      <devices>{devices}</devices></domain>"""
    caps = probe_qemu_caps(QEMU, cache_dir=tmp_path / "caps")
    config = QemuDriverConfig.system().with_overrides(
        lib_dir=str(tmp_path / "lib"), state_dir=str(tmp_path / "run")
    )
    defn = parse_domain(xml)
    apply_qemu_defaults(defn, caps, config=config)
    runtime = RuntimeContext.for_domain("argv-rich", 2, config)
    os.makedirs(runtime.lib_dir)
    Path(runtime.lib_dir, "master-key.aes").write_bytes(os.urandom(32))
    cmd = build_command(defn, caps, config, runtime)
    proc = subprocess.Popen(cmd.argv, env=cmd.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        sock = runtime.monitor_path
        assert sock is not None
        deadline = time.monotonic() + 30
        while not os.path.exists(sock) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        status, ids = asyncio.run(_peripherals(sock))
        assert status == "prelaunch"
        assert {"virtio-disk0", "sata0-0-0", "net0", "serial0", "channel0", "input0", "sound0", "video0",
                "balloon0", "rng0", "usb", "virtio-serial0"} <= ids  # fmt: skip
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
