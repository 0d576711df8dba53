"""Real virsh and libvirt-python drive real QEMU guests through virtstackd (qemu+unix:///system)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest
from tests.virt.daemon.conftest import VIRSH, RunningDaemon

from virtstack.testing.guest import Guest, domain_xml

libvirt = pytest.importorskip("libvirt", reason="libvirt-python (python3-libvirt) is not importable")

pytestmark = pytest.mark.qemu


def _wait_state(dom: object, state: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dom.state()[0] == state:  # type: ignore[attr-defined]
            return
        time.sleep(0.1)
    raise AssertionError(f"domain state is {dom.state()}, wanted {state}")  # type: ignore[attr-defined]


def _virsh_console(uri: str, name: str, marker: str, timeout: float = 60.0) -> tuple[int, bytes]:
    """`virsh console NAME` on a pty (virsh insists on a terminal): wait for `marker`, type a command
    that prints VS-42 (bytes travel client -> daemon -> guest), then detach with Ctrl-]."""
    assert VIRSH is not None
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(VIRSH, [VIRSH, "-c", uri, "console", name, "--force"])
    out = b""
    deadline = time.monotonic() + timeout
    try:
        typed = False
        while b"VS-42" not in out and time.monotonic() < deadline:
            if not typed and marker.encode() in out:
                time.sleep(0.5)  # let the guest's shell come up on the serial line
                os.write(fd, b"\recho VS-$((6*7))\r")
                typed = True
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    break
        os.write(fd, b"\x1d")  # Ctrl-]: virsh's escape character
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status), out
        os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), out
    finally:
        os.close(fd)


def test_virsh_drives_a_qemu_guest(daemon: RunningDaemon, guest: Guest, tmp_path: Path) -> None:
    uri = daemon.uri("qemu", "/system")
    xml = tmp_path / "vsq1.xml"
    xml.write_text(domain_xml("vsq1", guest))
    r = daemon.virsh(
        f"define {xml}; list --all; domstate vsq1 --reason; start vsq1; domstate vsq1 --reason", uri=uri
    )
    assert r.returncode == 0, r.stderr
    assert f"Domain 'vsq1' defined from {xml}\n" in r.stdout
    assert " -    vsq1   shut off\n" in r.stdout
    assert "Domain 'vsq1' started\n" in r.stdout and "running (booted)\n" in r.stdout
    try:
        code, out = _virsh_console(uri, "vsq1", guest.marker)
        assert guest.marker.encode() in out, out[-2000:]
        assert b"VS-42" in out, out[-2000:]
        assert b"Connected to domain 'vsq1'" in out
        assert code == 0
        r = daemon.virsh(
            "suspend vsq1; domstate vsq1 --reason; resume vsq1; dominfo vsq1; shutdown vsq1", uri=uri
        )
        assert r.returncode == 0, r.stderr
        assert "paused (user)\n" in r.stdout and "State:          running\n" in r.stdout
        conn = libvirt.open(uri)
        try:
            _wait_state(conn.lookupByName("vsq1"), libvirt.VIR_DOMAIN_SHUTOFF)  # the guest powered itself off
        finally:
            conn.close()
        r = daemon.virsh("domstate vsq1 --reason", uri=uri)
        assert r.stdout == "shut off (shutdown)\n\n"
    finally:
        daemon.virsh("destroy vsq1", uri=uri)
        r = daemon.virsh("undefine vsq1", uri=uri)
        assert r.returncode == 0, r.stderr


@pytest.mark.usefixtures("event_loop_thread")
def test_python_console_stream_and_transient_guest(daemon: RunningDaemon, guest: Guest) -> None:
    conn = libvirt.open(daemon.uri("qemu", "/system"))
    events: list[tuple[str, int, int]] = []
    cb = conn.domainEventRegisterAny(
        None,
        libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
        lambda c, d, e, det, o: events.append((d.name(), e, det)),
        None,
    )
    try:
        dom = conn.createXML(domain_xml("vsq2", guest), 0)
        try:
            # a non-blocking stream polled against a deadline, so a silent daemon fails the test, not hangs it
            stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
            dom.openConsole(None, stream, 0)
            seen = b""
            deadline = time.monotonic() + 60
            while guest.marker.encode() not in seen and time.monotonic() < deadline:
                data = stream.recv(65536)
                if isinstance(data, int):  # -2: nothing yet
                    time.sleep(0.05)
                    continue
                if not data:
                    break
                seen += data
            assert guest.marker.encode() in seen, seen[-2000:]
            stream.abort()
            assert dom.isPersistent() == 0
        finally:
            dom.destroy()
        with pytest.raises(libvirt.libvirtError) as exc:
            conn.lookupByName("vsq2")
        assert exc.value.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN
        deadline = time.monotonic() + 30
        stopped = ("vsq2", libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED)
        while stopped not in events and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ("vsq2", libvirt.VIR_DOMAIN_EVENT_STARTED, libvirt.VIR_DOMAIN_EVENT_STARTED_BOOTED) in events
        assert stopped in events
    finally:
        conn.domainEventDeregisterAny(cb)
        conn.close()


TRANSCRIPT = [
    "define {xml}", "list --all", "dominfo demo", "domstate demo --reason", "start demo", "list", "list --all",
    "dominfo demo", "domstate demo --reason", "domid demo", "domuuid demo", "suspend demo",
    "domstate demo --reason", "resume demo", "destroy demo", "domstate demo --reason", "list --all --name",
    "list --all --uuid", "undefine demo", "dominfo nosuch", "list --all",
]  # fmt: skip


def _normalise(text: str) -> list[str]:
    import re

    out = []
    for line in text.splitlines():
        line = re.sub(r"^( ?)\d+(\s+demo\s)", r"\1N\2", line)  # domain ids differ run to run
        line = re.sub(r"^(Id:\s+)\d+$", r"\1N", line)
        line = re.sub(r"^(CPU time:\s+)[\d.]+s$", r"\1Xs", line)
        line = re.sub(r"^\d+$", "N", line)  # domid
        out.append(line)
    return out


def test_virsh_transcript_matches_libvirtd(
    daemon: RunningDaemon, guest: Guest, tmp_path: Path, shared_dir: Path
) -> None:
    """The same virsh commands as virsh-9.0-output-samples.txt (virsh against libvirtd's QEMU driver)."""
    sample = (shared_dir / "libvirt" / "reference" / "virsh-9.0-output-samples.txt").read_text()
    blocks = sample.split("$ virsh ")[1:]
    expected_by_cmd: list[tuple[str, str]] = [(b.split("\n", 1)[0], b.split("\n", 1)[1]) for b in blocks]
    xml = tmp_path / "demo.xml"
    xml.write_text(domain_xml("demo", guest, memory_mib=256, uuid="af818b13-85d6-4c87-be0a-bef0238f9307"))
    uri = daemon.uri("qemu", "/system")
    wanted = iter(expected_by_cmd)
    try:
        for cmd in TRANSCRIPT:
            sample_cmd, sample_out = next(wanted)
            while sample_cmd != cmd.replace("{xml}", "/tmp/demo.xml"):  # skip commands of later issues
                sample_cmd, sample_out = next(wanted)
            assert VIRSH is not None
            r = subprocess.run(  # stderr into stdout, in the order virsh wrote them, as the sample has it
                [VIRSH, "-c", uri, *cmd.format(xml=xml).split()],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
            )  # fmt: skip
            ours = r.stdout.replace(str(xml), "/tmp/demo.xml") + f"[exit {r.returncode}]\n"
            assert _normalise(ours) == _normalise(sample_out), f"virsh {cmd}"
    finally:
        daemon.virsh("destroy", "demo", uri=uri)
        daemon.virsh("undefine", "demo", uri=uri)
