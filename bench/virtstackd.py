"""Our daemon (virtstackd) driven by libvirt-python with exactly the calls used on the real libvirtd."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.common import VIRTSTACKD, Results, Stats, is_listening
from bench.libvirt_api import open_libvirt
from bench.target import Target
from virtstack.testing.guest import Guest

DAEMON_MODULE = "virtstack.virt.daemon.__main__"


def why_unavailable() -> str | None:
    """None if libvirt-python (the client these figures are measured with) is there, else why not."""
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return "libvirt-python is not importable"
    return None


class Virtstackd:
    """`virtstackd --socket PATH --state-dir DIR` as a child process of the bench."""

    def __init__(self, workdir: Path, start_timeout: float = 30.0) -> None:
        self.workdir = workdir
        self.socket = workdir / "virtstackd.sock"
        self.state_dir = workdir / "state"
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"qemu+unix:///system?socket={self.socket}"

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.workdir / "virtstackd.log", "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "virtstack.virt.daemon", "--socket", str(self.socket),
                 "--state-dir", str(self.state_dir)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + self.start_timeout
        while not is_listening(self.socket):
            if self.process.poll() is not None:
                log = (self.workdir / "virtstackd.log").read_text(errors="replace")[-1500:]
                raise RuntimeError(f"virtstackd exited ({self.process.returncode}): {log}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"virtstackd socket did not appear within {self.start_timeout:.0f} s")
            time.sleep(0.01)

    def qemu_pids(self) -> list[int]:
        """QEMU processes of this daemon: their command lines name its (unique, temporary) state dir."""
        needle = str(self.state_dir).encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    cmdline = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if b"qemu-system" in cmdline and needle in cmdline:
                    pids.append(int(entry.name))
        return pids

    def stop(self) -> None:
        """Kill guests it left running (they outlive the daemon by design), then stop the daemon."""
        for pid in self.qemu_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_daemon(stack: ExitStack, results: Results, name: str, workdir: Path) -> Virtstackd | None:
    """A virtstackd of the target `name`'s own (so RSS figures stay per daemon), stopped when `stack`
    closes, its start time recorded; None, with a note, if it can't run."""
    reason = why_unavailable()
    if reason is not None:
        results.note(name, f"skipped: {reason}")
        return None
    daemon = Virtstackd(Path(tempfile.mkdtemp(prefix=f"vs-bench-{name}-", dir=workdir)))
    start = time.perf_counter()
    try:
        daemon.start()
    except RuntimeError as exc:
        results.note(name, f"skipped: {exc}")
        return None
    stack.callback(daemon.stop)
    assert daemon.process is not None
    results.daemon_pids[name] = daemon.process.pid
    results.add(name, "daemon start (socket up)", Stats((time.perf_counter() - start,)))
    return daemon


def open_target(stack: ExitStack, results: Results, guest: Guest, domain_type: str, workdir: Path) -> Target | None:
    """virtstackd driven by the real libvirt-python; None, with a note, if it can't run."""
    daemon = start_daemon(stack, results, VIRTSTACKD, workdir)
    if daemon is None:
        return None
    assert daemon.process is not None
    try:
        target = open_libvirt(VIRTSTACKD, daemon.uri, daemon.process.pid, guest, domain_type, workdir)
    except Exception as exc:
        results.note(VIRTSTACKD, f"skipped: cannot open {daemon.uri}: {exc}")
        return None
    stack.callback(target.close)
    return target
