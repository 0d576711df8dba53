"""Baseline: the test guest on QEMU/TCG started directly, paused then resumed over QMP as libvirt does.

The argv is the one our QEMU driver builds for the fixture domain (`xml_to_native`), so the difference
to the driver's start-to-marker is pure management overhead. Until that builder exists the plain
`virtstack.testing.guest.qemu_argv` is used, and the run says so.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from qemu.qmp import ConnectError, QMPClient

from bench.common import RAW_QEMU, await_marker
from bench.target import Target
from virtstack.common.atomic import write_atomic
from virtstack.testing.guest import Guest, domain_xml, qemu_argv
from virtstack.virt.errors import VirtError


@dataclass(frozen=True)
class RawCommand:
    """What to exec for one boot, and where its QMP socket and console log will be."""

    argv: list[str]
    env: dict[str, str] | None
    qmp_path: Path
    serial_log: Path
    source: str
    dirs: tuple[Path, ...] = ()
    secret_files: tuple[Path, ...] = ()

    def prepare(self) -> None:
        """Create what libvirt would before exec: per-domain dirs and the 32-byte master key."""
        for path in self.dirs:
            path.mkdir(parents=True, exist_ok=True)
        for path in self.secret_files:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, os.urandom(32), mode=0o600)


def command_for(guest: Guest, workdir: Path, domain_type: str) -> RawCommand:
    """Our driver's argv for the fixture domain if the builder is there, else the plain fixture argv."""
    serial_log = workdir / "raw-serial.log"
    xml = domain_xml("bench-raw", guest, domain_type=domain_type, serial_log=serial_log)
    ours = asyncio.run(_ours(xml, workdir))
    if isinstance(ours, RawCommand):
        return ours
    qmp_path = workdir / "raw-qmp.sock"
    accel = "kvm" if domain_type == "kvm" else "tcg"
    argv = [*qemu_argv(guest, accel=accel), "-S",
            "-chardev", f"socket,id=charmonitor,path={qmp_path},server=on,wait=off",
            "-mon", "chardev=charmonitor,id=monitor,mode=control",
            "-chardev", f"pty,id=charserial0,logfile={serial_log},logappend=off",
            "-device", "isa-serial,chardev=charserial0,id=serial0"]  # fmt: skip
    return RawCommand(argv, None, qmp_path, serial_log, f"the fixture's qemu_argv ({ours})")


async def _ours(xml: str, workdir: Path) -> RawCommand | str:
    """The argv `QemuDriver.connect_domain_xml_to_native` gives (what the driver execs); a string says why not."""
    from virtstack.virt.drivers.qemu.driver import QemuDriver

    driver = QemuDriver(root=workdir / "driver")
    try:
        line = await driver.connect_domain_xml_to_native("qemu-argv", xml)
    except VirtError as exc:
        return f"our xml_to_native failed: {exc}"
    finally:
        await driver.close()
    return parse_native(line)


_ENV_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def parse_native(line: str) -> RawCommand | str:
    """Split a `domxml-to-native` line into env and argv, noting the dirs and key files it needs."""
    words = shlex.split(line)
    env: dict[str, str] = {}
    while words and _ENV_WORD.match(words[0]):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    monitor = _chardev_option(words, "charmonitor", "path")
    serial = _chardev_option(words, "charserial0", "logfile")
    if monitor is None or serial is None:
        return "our xml_to_native argv has no monitor socket path or serial log"
    dirs = [Path(monitor).parent]
    dirs += [Path(env[k]) for k in ("HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME") if k in env]
    secrets = []
    for word in words:
        if word.startswith("{") and '"secret"' in word:
            secret = json.loads(word)
            if "file" in secret:
                secrets.append(Path(secret["file"]))
    return RawCommand(words, env or None, Path(monitor), Path(serial),
                      "our driver (connect_domain_xml_to_native)", tuple(dirs), tuple(secrets))  # fmt: skip


def _chardev_option(argv: list[str], chardev_id: str, key: str) -> str | None:
    for flag, value in itertools.pairwise(argv):
        if flag == "-chardev" and f"id={chardev_id}," in value + ",":
            for part in value.split(","):
                if part.startswith(f"{key}="):
                    return part[len(key) + 1 :]
    return None


async def _connect(path: Path, proc: subprocess.Popen[bytes], deadline: float) -> QMPClient:
    """Connect once QEMU listens; the socket file appears at bind(), a moment before listen()."""
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"QEMU exited with {proc.returncode} before its monitor came up")
        if path.exists():
            client = QMPClient("bench-raw")
            try:
                await client.connect(str(path))
                return client
            except (ConnectError, OSError):
                pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"QMP socket {path} did not come up")
        await asyncio.sleep(0.002)


async def boot_once(cmd: RawCommand, marker: str, timeout: float) -> tuple[float, float]:
    """Spawn paused, `cont` over QMP, wait for the marker. Returns (to QMP ready, to marker) seconds."""
    cmd.prepare()
    cmd.serial_log.unlink(missing_ok=True)
    cmd.qmp_path.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd.argv, env=cmd.env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    client: QMPClient | None = None
    try:
        client = await _connect(cmd.qmp_path, proc, time.monotonic() + timeout)
        await client.execute("cont")
        ready = time.perf_counter() - start
        seen = await await_marker(cmd.serial_log, marker, timeout)
        return ready, seen - start
    finally:
        if client is not None:
            await client.disconnect()
        proc.kill()
        _, err = proc.communicate(timeout=10)
        if proc.returncode not in (0, -9) and err:
            raise RuntimeError(f"QEMU failed: {err.decode(errors='replace')[-500:]}")


class RawQemuTarget(Target):
    """Boots only: the fixture's argv exec'd directly; 'create returns' is spawn until `cont` is acked."""

    name = RAW_QEMU

    def __init__(self, guest: Guest, domain_type: str, workdir: Path) -> None:
        super().__init__(guest, domain_type, workdir)
        self.command = command_for(guest, workdir, domain_type)

    def boot(self, index: int, timeout: float) -> tuple[float, float]:
        return asyncio.run(boot_once(self.command, self.guest.marker, timeout))
