"""The all-in-one main job behind `make run`: virtstackd on its own socket with the demo guest running.

It starts the daemon as a child process, then acts as an ordinary client (our client library over the
libvirt RPC protocol, like virsh would): it defines the demo guest, starts it, waits for the guest's
marker on its serial log and prints the commands that drive the daemon. Ctrl-C (or SIGTERM) destroys the
demo guest and stops the daemon.
"""

from __future__ import annotations

import os
import shlex
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from virtstack.kvm.accel import choose_domain_type
from virtstack.testing.guest import MARKER, build_guest, domain_xml, wait_for_text
from virtstack.virt.client import Connection, VirtError, connect
from virtstack.virt.errors import ErrorCode

DEMO_NAME = "demo"


def run_dir() -> Path:
    """Where the demo keeps its socket and state: short enough for a unix socket path, and ours alone.

    Root gets /run/virtstack-demo; others $XDG_RUNTIME_DIR/virtstack-demo (or /tmp/virtstack-demo-UID).
    A directory that exists but is a symlink, is owned by someone else or is open to others is refused:
    its configs would be started as this user's guests.
    """
    override = os.environ.get("VIRTSTACK_RUN_DIR")
    if override:
        base = Path(override)
    elif os.getuid() == 0:
        base = Path("/run/virtstack-demo")
    elif os.environ.get("XDG_RUNTIME_DIR"):
        base = Path(os.environ["XDG_RUNTIME_DIR"]) / "virtstack-demo"
    else:
        base = Path(f"/tmp/virtstack-demo-{os.getuid()}")
    try:
        base.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    info = base.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise RuntimeError(f"{base} is not a plain directory; refusing to use it")
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise RuntimeError(f"{base} must be owned by uid {os.getuid()} with mode 0700; refusing to use it")
    return base


def _wait_for_socket(sock: Path, daemon: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not sock.exists():
        if daemon.poll() is not None:
            raise RuntimeError(f"virtstackd exited with status {daemon.returncode} before listening")
        if time.monotonic() > deadline:
            raise TimeoutError(f"virtstackd did not create {sock} within {timeout}s")
        time.sleep(0.05)


def _start_demo_guest(conn: Connection, serial_log: Path) -> None:
    """Define the demo guest (again, keeping its uuid, so its XML is current) and start it afresh."""
    uuid: str | None = None
    try:
        existing = conn.lookup_by_name(DEMO_NAME)
        uuid = existing.uuid_string()
        if existing.is_active():
            existing.destroy()
    except VirtError as e:
        if e.code != ErrorCode.NO_DOMAIN:
            raise
    xml = domain_xml(DEMO_NAME, build_guest(), uuid=uuid, domain_type=choose_domain_type(), serial_log=serial_log)
    serial_log.unlink(missing_ok=True)
    conn.define_xml(xml).create()


def run_stack() -> int:
    here = run_dir()
    sock, state, serial_log = here / "virtstackd-sock", here / "state", here / "demo-serial.log"
    uri = f"qemu+unix:///system?socket={sock}"
    sock.unlink(missing_ok=True)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "virtstack.virt.daemon", "--socket", str(sock), "--state-dir", str(state)],
        stdin=subprocess.DEVNULL,
        # Its own session: a Ctrl-C at the terminal reaches only us, and we stop the guest before it.
        start_new_session=True,
    )
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        _wait_for_socket(sock, daemon)
        with connect(uri) as conn:
            _start_demo_guest(conn, serial_log)
            print(f"virtstack: virtstackd is listening on {sock}; demo guest '{DEMO_NAME}' started")
            marker_line = next(
                line for line in wait_for_text(serial_log, MARKER, timeout=120).splitlines() if MARKER in line
            )
            print(f"virtstack: demo guest says: {marker_line.strip()}")
            q = shlex.quote(uri)
            print("\nDrive it with the real virsh or with vsh:")
            for tool in ("virsh", f"{Path(sys.executable).parent / 'vsh'}"):
                print(f"  {tool} -c {q} list --all")
            print(f"  virsh -c {q} dominfo {DEMO_NAME}")
            print(f"  virsh -c {q} console {DEMO_NAME}      (Ctrl-] detaches)")
            print(f"  python3 -c \"import libvirt; print(libvirt.open({uri!r}).listAllDomains())\"")
            print("\nCtrl-C stops the demo guest and the daemon.", flush=True)
            while not stopping and daemon.poll() is None:
                time.sleep(0.2)
            if daemon.poll() is None:
                try:
                    conn.lookup_by_name(DEMO_NAME).destroy()
                except VirtError:
                    pass
    finally:
        if daemon.poll() is None:
            daemon.terminate()
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
    return 0 if stopping else (daemon.returncode or 0)
