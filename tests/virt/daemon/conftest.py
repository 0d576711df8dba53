"""A private virtstackd per test module, started as the real `virtstackd` process on temporary sockets."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

VIRSH = shutil.which("virsh")


@dataclass
class RunningDaemon:
    socket: Path
    state_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def ro_socket(self) -> Path:
        return Path(str(self.socket) + "-ro")

    def uri(self, driver: str = "test", path: str = "/default", *, ro: bool = False) -> str:
        sock = self.ro_socket if ro else self.socket
        return f"{driver}+unix://{path}?socket={sock}"

    def virsh(
        self, *args: str, uri: str | None = None, readonly: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run the real virsh against this daemon; returns the completed process (never raises)."""
        if VIRSH is None:
            pytest.skip("virsh (libvirt-clients) is not installed")
        cmd = [VIRSH, *(["-r"] if readonly else []), "-c", uri or self.uri(), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def start_daemon(tmp: Path, *extra: str) -> RunningDaemon:
    sock = tmp / "virtstackd-sock"
    log = tmp / "virtstackd.log"
    cmd = [
        sys.executable,
        "-m",
        "virtstack.virt.daemon",
        "--socket",
        str(sock),
        "--state-dir",
        str(tmp / "state"),
        *extra,
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"virtstackd exited with {proc.returncode}: {log.read_text()}")
        if Path(str(sock) + "-ro").exists():
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(sock))
                return RunningDaemon(sock, tmp / "state", proc, log)
            except OSError:
                pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("virtstackd did not start listening within 30 s")


def stop_daemon(d: RunningDaemon) -> None:
    if d.proc.poll() is None:
        d.proc.send_signal(signal.SIGTERM)
        try:
            d.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            d.proc.kill()
            d.proc.wait()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    d = start_daemon(tmp_path_factory.mktemp("vsd"))
    yield d
    stop_daemon(d)
    assert d.proc.returncode == 0, d.log.read_text()
    assert not d.socket.exists()
    assert "Traceback" not in d.log.read_text(), d.log.read_text()


@pytest.fixture(autouse=True)
def _no_env_uri() -> Iterator[None]:
    saved = os.environ.pop("LIBVIRT_DEFAULT_URI", None)
    yield
    if saved is not None:
        os.environ["LIBVIRT_DEFAULT_URI"] = saved


@pytest.fixture(scope="session")
def event_loop_thread() -> Iterator[None]:
    """libvirt-python's default event loop in a thread (as Nova runs it): events, keepalive, streams."""
    libvirt = pytest.importorskip("libvirt", reason="libvirt-python (python3-libvirt) is not importable")
    libvirt.virEventRegisterDefaultImpl()
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            libvirt.virEventRunDefaultImpl()

    threading.Thread(target=run, daemon=True, name="libvirt-events").start()
    yield
    stop.set()
