"""Our define (parse + QEMU defaults + format) against what the real libvirtd 9.0 answered for the same input."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from virtstack.testing.conformance.domain import canonical, run_one, same

DATA = Path(__file__).with_name("data")
CASES = sorted(p.name[: -len(".in.xml")] for p in DATA.glob("*.in.xml"))


def _check(name: str, caps: object, expected_xml: str | None, expected_err: str | None) -> None:
    xml = (DATA / f"{name}.in.xml").read_text()
    ours = run_one(xml, caps)
    if expected_err is not None:
        assert ours.error is not None, f"{name}: libvirt rejects, we accepted"
        assert str(ours.error) == expected_err.strip(), name
    else:
        assert ours.error is None, f"{name}: {ours.error}"
        assert ours.xml is not None and same(ours.xml, expected_xml or "", xml), (
            name, canonical(expected_xml or "", xml), canonical(ours.xml, xml))


@pytest.mark.parametrize("name", CASES)
def test_matches_recorded_libvirt(name: str, qemu_caps) -> None:  # type: ignore[no-untyped-def]
    out, err = DATA / f"{name}.out.xml", DATA / f"{name}.err"
    _check(name, qemu_caps, out.read_text() if out.exists() else None, err.read_text() if err.exists() else None)


@pytest.fixture(scope="module")
def live_libvirtd() -> Iterator[str]:
    """A private session libvirtd run as 'nobody' in a temp dir: touches no system libvirt state."""
    libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")
    daemon, setpriv = shutil.which("libvirtd") or "/usr/sbin/libvirtd", shutil.which("setpriv")
    if os.geteuid() != 0 or not Path(daemon).exists() or setpriv is None:
        pytest.skip("needs root, libvirtd and setpriv to start a private session daemon")
    base = Path(tempfile.mkdtemp(prefix="vs-xml-libvirtd-"))
    run, home = base / "run", base / "home"
    run.mkdir()
    home.mkdir()
    os.chown(base, 65534, 65534)
    for p in (run, home):
        os.chown(p, 65534, 65534)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "XDG_RUNTIME_DIR": str(run),
           "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache")}
    proc = subprocess.Popen(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", daemon, "--timeout", "120"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    sock = run / "libvirt" / "libvirt-sock"
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip("the private libvirtd did not come up")
            time.sleep(0.1)
        libvirt.registerErrorHandler(lambda *_: None, None)
        yield f"qemu+unix:///session?socket={sock}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_matches_live_libvirtd(live_libvirtd: str, qemu_caps) -> None:  # type: ignore[no-untyped-def]
    """The same inputs through a real daemon now, so the recorded answers cannot silently go stale."""
    import libvirt

    conn = libvirt.open(live_libvirtd)
    try:
        for name in CASES:
            xml = (DATA / f"{name}.in.xml").read_text()
            try:
                dom = conn.defineXML(xml)
            except libvirt.libvirtError as e:
                _check(name, qemu_caps, None, str(e))
                continue
            try:
                real = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
            finally:
                dom.undefine()
            _check(name, qemu_caps, real, None)
    finally:
        conn.close()
