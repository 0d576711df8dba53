"""Private daemons for differential tests and benchmarks: a real libvirtd 9.0 (the oracle) and our virtstackd.

Rules: the libvirtd never touches the machine's libvirt state. It runs in its own mount namespace where
/run is a fresh tmpfs and /etc/libvirt (a copy), /var/lib/libvirt and /var/log/libvirt are bind mounts of
directories under a private temporary directory, /var/cache/libvirt one of our own cache directories;
only its sockets are reachable from outside. The mounts are made by this module's own `ns-exec` entry
point run under `unshare` (argument lists all the way, no shell), which then execs libvirtd. Its
built-in `test:///default` needs no QEMU; its qemu:///system runs real guests, which `stop()` destroys
(libvirtd would leave them running).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn
from urllib.parse import quote

from virtstack.virt.errors import VirtError

LIBVIRTD = "/usr/sbin/libvirtd"
UNSHARE = "/usr/bin/unshare"
MOUNT = "/usr/bin/mount"
#: Host paths the daemon writes to, each replaced by a private directory inside its namespace.
#: Debian's default root PATH: libvirtd passes its own PATH to QEMU (visible in domxml-to-native)
DAEMON_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: the private daemons' /var/cache/libvirt (QEMU capability cache), ours alone and reused across runs
CAPS_CACHE = Path.home() / ".cache" / "virtstack" / "private-libvirtd-cache"
PRIVATE_DIRS = ("/etc/libvirt", "/var/lib/libvirt", "/var/cache/libvirt", "/var/log/libvirt")


def unavailable_reason() -> str | None:
    """Why a private libvirtd cannot run here, or None when it can."""
    if not Path(LIBVIRTD).is_file():
        return f"{LIBVIRTD} is not installed (apt-get install libvirt-daemon)"
    for tool in (UNSHARE, MOUNT):
        if not Path(tool).is_file():
            return f"{tool} is not installed (util-linux)"
    if os.geteuid() != 0:
        return "a private libvirtd needs root (mount namespace)"
    return None


@dataclass
class PrivateLibvirtd:
    """One running libvirtd; `socket` is its read-write UNIX socket."""

    root: Path
    process: subprocess.Popen[bytes]
    socket: Path
    log: Path
    _stopped: bool = field(default=False, repr=False)

    def uri(self, driver_uri: str = "test:///default") -> str:
        """A client URI reaching `driver_uri` inside this daemon, e.g. test+unix:///default?socket=…"""
        return _unix_uri(driver_uri, self.socket)

    def stop(self) -> None:
        """Destroy its running guests, terminate the daemon (by its own pid), remove its directory.

        libvirtd leaves guests running when it exits; nothing else would ever stop these.
        """
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.process.poll() is None:
                destroy_guests(self.uri("qemu:///system"))
        finally:
            _terminate(self.process)
            shutil.rmtree(self.root, ignore_errors=True)


def _unix_uri(driver_uri: str, socket: Path) -> str:
    """driver://path over the UNIX socket `socket`; the path is escaped, as any URI parameter must be."""
    scheme, rest = driver_uri.split("://", 1)
    return f"{scheme}+unix://{rest}?socket={quote(str(socket), safe='/')}"


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the daemon we started, SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def destroy_guests(uri: str) -> None:
    """Destroy every running domain at `uri`: daemons leave guests running when they exit."""
    from virtstack.virt.client import connect  # the client is what these daemons exist to test

    try:
        conn = connect(uri, keepalive=None)
    except VirtError:
        return
    try:
        for dom in conn.list_all_domains(1):  # VIR_CONNECT_LIST_DOMAINS_ACTIVE
            try:
                dom.destroy()
            except VirtError:
                pass
    except VirtError:
        pass
    finally:
        conn.close()


def _config(root: Path, keepalive: tuple[int, int]) -> str:
    return "\n".join(
        [
            f"keepalive_interval = {keepalive[0]}",
            f"keepalive_count = {keepalive[1]}",
            f'unix_sock_dir = "{root / "sock"}"',
            'unix_sock_rw_perms = "0700"',
            'auth_unix_rw = "none"',
            'auth_unix_ro = "none"',
            f'log_outputs = "3:file:{root / "libvirtd.log"}"',
            "",
        ]
    )


#: qemu.conf lines that let the private daemon run guests here: as root, no SELinux/AppArmor labels, and
#: QEMU's stdout/stderr to a file instead of virtlogd (not running in the private namespace), no cgroups
#: (they would outlive the namespace)
GUEST_QEMU_CONF = (
    'user = "root"\ngroup = "root"\nsecurity_driver = "none"\nstdio_handler = "file"\ncgroup_controllers = [ ]\n'
)


def start_libvirtd(
    timeout: float = 30.0, *, keepalive: tuple[int, int] = (5, 5), qemu_conf: str = GUEST_QEMU_CONF
) -> PrivateLibvirtd:
    """Start a private libvirtd and wait until its socket accepts; raises RuntimeError on failure.

    `keepalive` is the daemon's (keepalive_interval, keepalive_count): how often it pings idle clients;
    `qemu_conf` is appended to its private copy of qemu.conf.
    """
    reason = unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    root = Path(tempfile.mkdtemp(prefix="vs-libvirtd-"))
    (root / "sock").mkdir()
    binds: list[str] = []
    for host_dir in PRIVATE_DIRS:
        private = root / host_dir.strip("/").replace("/", "_")
        if host_dir == "/etc/libvirt" and Path(host_dir).is_dir():
            # the daemon needs the machine's qemu.conf; it must not write first-boot files there
            shutil.copytree(host_dir, private, symlinks=True)
            with (private / "qemu.conf").open("a") as f:
                f.write("\n" + qemu_conf)
        elif host_dir == "/var/cache/libvirt":
            # kept between runs: probing QEMU's capabilities costs seconds on every fresh daemon
            private = CAPS_CACHE
            private.mkdir(parents=True, exist_ok=True)
        else:
            private.mkdir()
        if Path(host_dir).is_dir():
            binds += ["--bind", str(private), host_dir]
    conf = root / "libvirtd.conf"
    conf.write_text(_config(root, keepalive))
    # unshare and ns-exec exec into libvirtd, so the child's pid is the daemon's
    process = subprocess.Popen(
        [UNSHARE, "--mount", "--propagation", "private", sys.executable, "-m", __name__, "ns-exec",
         *binds, "--", LIBVIRTD, "-f", str(conf), "-p", str(root / "libvirtd.pid")],
        env={**os.environ, "PATH": DAEMON_PATH},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    daemon = PrivateLibvirtd(root, process, root / "sock" / "libvirt-sock", root / "libvirtd.log")
    deadline = time.monotonic() + timeout
    while not daemon.socket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            log = daemon.log.read_text(errors="replace")[-2000:] if daemon.log.exists() else ""
            daemon.stop()
            raise RuntimeError(f"private libvirtd did not start (exit {process.returncode}): {log}")
        time.sleep(0.05)
    return daemon


@dataclass
class PrivateVirtstackd:
    """One virtstackd on a private socket and state directory."""

    root: Path
    process: subprocess.Popen[bytes]
    socket: Path
    #: destroy qemu:///system guests on stop (opening that driver just to find none costs a second)
    guests: bool = False
    _stopped: bool = field(default=False, repr=False)

    def uri(self, driver_uri: str = "test:///default") -> str:
        return _unix_uri(driver_uri, self.socket)

    def stop(self) -> None:
        """Destroy its running guests, terminate it (by its own pid), remove its directory."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.guests and self.process.poll() is None:
                destroy_guests(self.uri("qemu:///system"))
        finally:
            _terminate(self.process)
            shutil.rmtree(self.root, ignore_errors=True)


def start_virtstackd(
    timeout: float = 30.0, *, extra_args: tuple[str, ...] = (), guests: bool = False
) -> PrivateVirtstackd:
    """Start `virtstackd --socket S --state-dir D` (this interpreter) and wait for its socket.

    Pass `guests=True` when the caller will run QEMU guests through it, so `stop()` destroys them.
    """
    root = Path(tempfile.mkdtemp(prefix="vs-virtstackd-"))
    sock = root / "sock"
    log = (root / "virtstackd.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "virtstack.virt.daemon", "--socket", str(sock), "--state-dir", str(root / "state"),
         *extra_args],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    daemon = PrivateVirtstackd(root, process, sock, guests)
    deadline = time.monotonic() + timeout
    while not sock.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            text = (root / "virtstackd.log").read_text(errors="replace")[-2000:]
            daemon.stop()
            raise RuntimeError(f"virtstackd did not start (exit {process.returncode}): {text}")
        time.sleep(0.02)
    return daemon


def _ns_exec(args: list[str]) -> NoReturn:
    """Inside the private mount namespace: fresh /run, the `--bind SRC DST` mounts, then exec the command.

    Every mount is an argument list (no shell), so paths with spaces or quotes are safe.
    """
    sep = args.index("--")
    opts, command = args[:sep], args[sep + 1 :]
    _mount("-t", "tmpfs", "tmpfs", "/run")
    os.makedirs("/run/lock", exist_ok=True)  # /var/lock -> /run/lock: console lock files
    for i in range(0, len(opts), 3):
        if opts[i] != "--bind" or i + 2 >= len(opts):
            raise SystemExit(f"ns-exec: expected --bind SRC DST, got {opts[i:]}")
        _mount("--bind", opts[i + 1], opts[i + 2])
    os.execvp(command[0], command)


def _mount(*args: str) -> None:
    subprocess.run([MOUNT, *args], check=True, stdin=subprocess.DEVNULL)


if __name__ == "__main__":
    if sys.argv[1:2] != ["ns-exec"]:
        raise SystemExit("usage: python -m virtstack.testing.servers ns-exec [--bind SRC DST]... -- COMMAND...")
    _ns_exec(sys.argv[2:])


@contextlib.contextmanager
def side_by_side(setup: Callable[[str], None]) -> Iterator[dict[str, str]]:
    """A private virtstackd and, where it can run, a private libvirtd, each with `setup(uri)` run on its
    qemu:///system at once (guests boot in parallel); yields {"ours": uri, "libvirtd": uri}, without
    "libvirtd" when the oracle is unavailable. Both are stopped, their guests destroyed, afterwards."""
    with ThreadPoolExecutor(2) as pool:
        ours_f = pool.submit(start_virtstackd, guests=True)
        oracle_f = None if unavailable_reason() else pool.submit(start_libvirtd)
        daemons: list[PrivateVirtstackd | PrivateLibvirtd] = [ours_f.result()]
        if oracle_f is not None:
            daemons.append(oracle_f.result())
    try:
        uris = dict(zip(("ours", "libvirtd"), (d.uri("qemu:///system") for d in daemons), strict=False))
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(setup, uris.values()))
        yield uris
    finally:
        for daemon in daemons:
            daemon.stop()

