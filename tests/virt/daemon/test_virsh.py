"""The real virsh (libvirt-clients 9.0) against virtstackd's test:///default: outputs match libvirtd's."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.virt.daemon.conftest import RunningDaemon

DOM2 = (
    "<domain type='test'><name>vm2</name><uuid>11111111-2222-3333-4444-555555555555</uuid>"
    "<title>second vm</title><memory unit='MiB'>512</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>"
)

# layouts from virsh-9.0-test-driver-outputs.txt (virsh against libvirtd's test driver)
LIST_ONE = " Id   Name   State\n----------------------\n 1    test   running\n\n"
NODEINFO = (
    "CPU model:           i686\nCPU(s):              16\nCPU frequency:       1400 MHz\n"
    "CPU socket(s):       2\nCore(s) per socket:  2\nThread(s) per core:  2\nNUMA cell(s):        2\n"
    "Memory size:         3145728 KiB\n\n"
)
VERSION = (
    "Compiled against library: libvirt 9.0.0\nUsing library: libvirt 9.0.0\n"
    "Using API: TEST 9.0.0\nRunning hypervisor: TEST 0.0.2\n\n"
)
DUMPXML_HEAD = (
    "<domain type='test' id='1'>\n  <name>test</name>\n  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\n"
)


def test_sockets_and_modes(daemon: RunningDaemon) -> None:
    assert stat.S_IMODE(daemon.socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(daemon.ro_socket.stat().st_mode) == 0o666


def test_host_commands(daemon: RunningDaemon) -> None:
    r = daemon.virsh("list --all; nodeinfo; version; uri; hostname")
    assert r.returncode == 0, r.stderr
    import socket

    uri = daemon.uri()
    assert r.stdout == LIST_ONE + NODEINFO + VERSION + f"{uri}\n\n{socket.gethostname()}\n\n"


def test_dominfo_domstate_dumpxml(daemon: RunningDaemon) -> None:
    r = daemon.virsh("dominfo test; domstate test --reason; dumpxml test")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith(
        "Id:             1\nName:           test\nUUID:           6695eb01-f6a4-8304-79aa-97f2502e193f\n"
    )
    assert (
        "Max memory:     8388608 KiB\nUsed memory:    2097152 KiB\nPersistent:     yes\nAutostart:      disable\n"
        in out
    )
    assert "Security model: testSecurity\nSecurity DOI:   \nSecurity label: libvirt-test (enforcing)\n" in out
    assert "\nrunning (unknown)\n\n" in out
    assert DUMPXML_HEAD in out and "      <source file='/guest/diskimage1'/>\n" in out


def test_capabilities(daemon: RunningDaemon) -> None:
    r = daemon.virsh("capabilities")
    assert r.returncode == 0, r.stderr
    assert "<secmodel>\n      <model>testSecurity</model>" in r.stdout
    assert "<cpu id='15' socket_id='1' die_id='0' core_id='7' siblings='15'/>" in r.stdout


def test_lifecycle(daemon: RunningDaemon, tmp_path: Path) -> None:
    xml = tmp_path / "dom2.xml"
    xml.write_text(DOM2)
    r = daemon.virsh(
        f"define {xml}; list --all --title; start vm2; suspend vm2; domstate vm2 --reason; resume vm2; "
        "domstate vm2 --reason; shutdown vm2; domstate vm2 --reason; start vm2; destroy vm2; "
        "domstate vm2 --reason; autostart vm2; dominfo vm2; autostart --disable vm2; undefine vm2; list --all"
    )
    assert r.returncode == 0, r.stderr
    expected = [
        f"Domain 'vm2' defined from {xml}\n",
        " Id   Name   State      Title\n-----------------------------------\n"
        " 1    test   running    \n -    vm2    shut off   second vm\n",
        "Domain 'vm2' started\n",
        "Domain 'vm2' suspended\n",
        "paused (user)\n",
        "Domain 'vm2' resumed\n",
        "running (unpaused)\n",
        "Domain 'vm2' is being shutdown\n",
        "shut off (shutdown)\n",
        "Domain 'vm2' started\n",
        "Domain 'vm2' destroyed\n",
        "shut off (destroyed)\n",
        "Domain 'vm2' marked as autostarted\n",
    ]
    pos = 0
    for chunk in expected:
        found = r.stdout.find(chunk, pos)
        assert found >= 0, f"missing {chunk!r} after offset {pos} in:\n{r.stdout}"
        pos = found + len(chunk)
    assert "Autostart:      enable\n" in r.stdout
    assert "Domain 'vm2' has been undefined\n" in r.stdout
    assert r.stdout.endswith(LIST_ONE)


def test_create_transient(daemon: RunningDaemon, tmp_path: Path) -> None:
    xml = tmp_path / "t.xml"
    xml.write_text(DOM2.replace("vm2", "tvm").replace("11111111-2222", "22222222-2222"))
    r = daemon.virsh(f"create {xml}; dominfo tvm; destroy tvm; list --all")
    assert r.returncode == 0, r.stderr
    assert f"Domain 'tvm' created from {xml}\n" in r.stdout
    assert "Persistent:     no\n" in r.stdout
    assert r.stdout.endswith(LIST_ONE)


def test_errors_match_libvirt(daemon: RunningDaemon) -> None:
    r = daemon.virsh("start test")
    assert r.returncode == 1
    assert r.stderr == "error: Domain is already active\n"  # virsh's own check, as against libvirtd
    r = daemon.virsh("dominfo nosuch")
    assert (r.returncode, r.stderr) == (1, "error: failed to get domain 'nosuch'\n")


def test_read_only(daemon: RunningDaemon) -> None:
    for kwargs in ({"readonly": True}, {"uri": daemon.uri(ro=True)}):
        r = daemon.virsh("destroy test", **kwargs)  # type: ignore[arg-type]
        assert r.returncode == 1
        assert "operation forbidden: read only access prevents virDomainDestroy" in r.stderr
        r = daemon.virsh("list --all", **kwargs)  # type: ignore[arg-type]
        assert (r.returncode, r.stdout) == (0, LIST_ONE)


def test_unknown_uri(daemon: RunningDaemon) -> None:
    r = daemon.virsh("list", uri=f"nosuch+unix:///x?socket={daemon.socket}")
    assert r.returncode == 1
    assert "no connection driver available for nosuch:///x" in r.stderr


def test_socket_mode_and_group_are_configurable(tmp_path: Path) -> None:
    from tests.virt.daemon.conftest import start_daemon, stop_daemon

    d = start_daemon(tmp_path, "--socket-mode", "0660", "--socket-group", "root", "--ro-socket-mode", "0640")
    try:
        st = d.socket.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o660, 0)
        assert stat.S_IMODE(d.ro_socket.stat().st_mode) == 0o640
        assert d.virsh("list", uri=d.uri()).returncode == 0
    finally:
        stop_daemon(d)
    assert d.proc.returncode == 0 and not d.socket.exists() and not d.ro_socket.exists()


def test_uri_query_parameters_share_one_qemu_driver(daemon: RunningDaemon) -> None:
    """Unknown URI parameters must not open a second QEMU driver on the same state directory (its
    lock would refuse it), neither on the read-write socket nor on the read-only one."""
    plain = daemon.virsh("list", "--all", "--name", uri=daemon.uri("qemu", "/system"))
    assert plain.returncode == 0, plain.stderr
    for ro in (False, True):
        sock = daemon.ro_socket if ro else daemon.socket
        extra = daemon.virsh("list", "--all", "--name", uri=f"qemu+unix:///system?x=1&socket={sock}", readonly=ro)
        assert extra.returncode == 0, extra.stderr
        assert extra.stdout == plain.stdout
