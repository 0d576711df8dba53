"""A private real libvirtd for side-by-side figures: own mount namespace, own dirs, stopped when done.

A root libvirtd insists on its system paths (/etc/libvirt, /var/lib/libvirt, /run/libvirt ...). To keep
clear of any daemon or state other people on the machine use, the daemon runs in a private mount
namespace where temp dirs are bind-mounted over those paths; its socket therefore appears outside at
<workdir>/run/libvirt/libvirt-sock. QEMU's capability cache (/var/cache/libvirt) is kept between runs
in ~/.cache/virtstack/bench-libvirtd because libvirt's first probe of the QEMU binary takes ~8 s.
Config: QEMU runs as root without a security driver and writes its own logs (no virtlogd), no TCP.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from bench.common import is_listening

QEMU_CONF = """\
user = "root"
group = "root"
security_driver = "none"
stdio_handler = "file"
remember_owner = 0
"""

LIBVIRTD_CONF = """\
auth_unix_rw = "none"
auth_unix_ro = "none"
listen_tcp = 0
listen_tls = 0
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
"""

IDLE_TIMEOUT_S = 120
"""libvirtd --timeout: if this process dies without stopping it, the daemon exits once idle."""


def libvirtd_binary() -> str | None:
    """Path of the installed libvirtd, or None."""
    return shutil.which("libvirtd") or ("/usr/sbin/libvirtd" if os.access("/usr/sbin/libvirtd", os.X_OK) else None)


def why_unavailable() -> str | None:
    """None if a private libvirtd can run here, else the reason (shown instead of figures)."""
    if libvirtd_binary() is None:
        return "libvirtd is not installed (apt-get install libvirt-daemon libvirt-daemon-driver-qemu)"
    if os.geteuid() != 0:
        return "a private system libvirtd needs root (mount namespace over its system paths)"
    if shutil.which("unshare") is None:
        return "unshare(1) is missing"
    try:
        import libvirt  # noqa: F401
    except ImportError:
        return "libvirt-python is not importable (apt-get install python3-libvirt)"
    return None


def capability_cache_dir() -> Path:
    base = Path(os.environ.get("VIRTSTACK_CACHE", Path.home() / ".cache" / "virtstack"))
    return base / "bench-libvirtd" / "cache"


class PrivateLibvirtd:
    """Start with `with PrivateLibvirtd() as d:`; connect to `d.uri`; `d.pid` is the daemon's pid."""

    def __init__(self, workdir: Path | None = None, start_timeout: float = 30.0) -> None:
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="vs-bench-libvirtd-"))
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.workdir / "run" / "libvirt" / "libvirt-sock"

    @property
    def uri(self) -> str:
        return f"qemu+unix:///system?socket={self.socket}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.workdir / "log" / "libvirtd.log"

    def start(self) -> None:
        binary = libvirtd_binary()
        if binary is None:
            raise RuntimeError("libvirtd is not installed")
        w = self.workdir
        for sub in ("etc", "run", "lib", "log"):
            (w / sub).mkdir(parents=True, exist_ok=True)
        cache = capability_cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        (w / "etc" / "qemu.conf").write_text(QEMU_CONF)
        (w / "etc" / "libvirtd.conf").write_text(LIBVIRTD_CONF)
        binds = [(w / "etc", "/etc/libvirt"), (w / "lib", "/var/lib/libvirt"), (cache, "/var/cache/libvirt"),
                 (w / "log", "/var/log/libvirt"), (w / "run", "/run")]  # fmt: skip
        script = " && ".join(f"mount --bind {shlex.quote(str(src))} {dst}" for src, dst in binds)
        script += f" && exec {binary} -f /etc/libvirt/libvirtd.conf --timeout {IDLE_TIMEOUT_S}"
        # unshare execs sh, sh execs libvirtd: the Popen pid is the daemon's pid.
        with open(w / "stdout.log", "wb") as out:
            self.process = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + self.start_timeout
        while not is_listening(self.socket):
            if self.process.poll() is not None:
                tail = self._tail()
                self.stop()
                raise RuntimeError(f"libvirtd exited ({self.process.returncode}): {tail}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"libvirtd socket did not appear within {self.start_timeout:.0f} s")
            time.sleep(0.02)

    def _tail(self) -> str:
        text = ""
        for path in (self.workdir / "stdout.log", self.log_path):
            if path.exists():
                text += path.read_text(errors="replace")[-1500:]
        return text.strip()

    def qemu_pids(self) -> list[int]:
        """Live QEMU processes of this daemon, from the pid files it keeps in its private run dir.

        (Not by mount namespace: libvirt gives every QEMU a namespace of its own for /dev.)
        """
        pids = []
        for pidfile in (self.workdir / "run" / "libvirt" / "qemu").glob("*.pid"):
            try:
                pid = int(pidfile.read_text().strip())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except (OSError, ValueError):
                continue
            if b"qemu-system" in cmdline:
                pids.append(pid)
        return pids

    def stop(self) -> None:
        """SIGKILL any QEMU it left running, SIGTERM the daemon (SIGKILL after 10 s), remove the temp dir."""
        if self.process is not None and self.process.poll() is None:
            for pid in self.qemu_pids():  # guests outlive libvirtd by design; these are ours to end
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PrivateLibvirtd:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
