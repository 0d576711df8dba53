"""Remote access: TLS with client certificates checked against a CA (qemu+tls:// style), plain TCP on loopback."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.virt.daemon.conftest import VIRSH, RunningDaemon, start_daemon, stop_daemon

OPENSSL = shutil.which("openssl")
EXTENSIONS = """
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
"""


def _openssl(*args: str) -> None:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, *args], check=True, capture_output=True, timeout=60)


def _make_ca(d: Path, name: str) -> None:
    (d / "ext.cnf").write_text("[req]\ndistinguished_name = dn\n[dn]\n" + EXTENSIONS)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "cakey.pem"),
             "-out", str(d / "cacert.pem"), "-days", "2", "-subj", f"/CN={name}",
             "-config", str(d / "ext.cnf"), "-extensions", "v3_ca")  # fmt: skip


def _make_cert(d: Path, who: str) -> None:
    key, csr, cert = d / f"{who}key.pem", d / f"{who}.csr", d / f"{who}cert.pem"
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
             "-subj", f"/CN=localhost/O=virtstack {who}", "-config", str(d / "ext.cnf"))  # fmt: skip
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(d / "cacert.pem"), "-CAkey", str(d / "cakey.pem"),
             "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(d / "ext.cnf"),
             "-extensions", who)  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if OPENSSL is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("pki")
    _make_ca(d, "virtstack test CA")
    _make_cert(d, "server")
    _make_cert(d, "client")
    rogue = d / "rogue"
    rogue.mkdir()
    _make_ca(rogue, "some other CA")
    _make_cert(rogue, "client")
    return d


@pytest.fixture(scope="module")
def tls_daemon(
    pki: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningDaemon, int, int]]:
    tls_port, tcp_port = _free_port(), _free_port()
    d = start_daemon(
        tmp_path_factory.mktemp("vsd-tls"),
        "--listen-tls", f"127.0.0.1:{tls_port}", "--tls-cert", str(pki / "servercert.pem"),
        "--tls-key", str(pki / "serverkey.pem"), "--tls-ca", str(pki / "cacert.pem"),
        "--listen-tcp", f"127.0.0.1:{tcp_port}",
    )  # fmt: skip
    yield d, tls_port, tcp_port
    stop_daemon(d)


@pytest.mark.skipif(VIRSH is None, reason="virsh is not installed")
def test_virsh_over_tls(tls_daemon: tuple[RunningDaemon, int, int], pki: Path) -> None:
    d, tls_port, _ = tls_daemon
    r = d.virsh("list", uri=f"test+tls://localhost:{tls_port}/default?pkipath={pki}")
    assert r.returncode == 0, r.stderr
    assert " 1    test   running\n" in r.stdout


def _tls_client(port: int, ca: Path, cert: Path | None, key: Path | None) -> bytes:
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert is not None and key is not None:
        ctx.load_cert_chain(str(cert), str(key))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=20) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as s,
    ):
        return s.recv(1)


def test_good_client_certificate_gets_the_confirmation_byte(
    tls_daemon: tuple[RunningDaemon, int, int], pki: Path
) -> None:
    _, port, _ = tls_daemon
    assert _tls_client(port, pki / "cacert.pem", pki / "clientcert.pem", pki / "clientkey.pem") == b"\x01"


@pytest.mark.parametrize("which", ["rogue", "none"])
def test_bad_client_certificates_are_refused(
    tls_daemon: tuple[RunningDaemon, int, int], pki: Path, which: str
) -> None:
    _, port, _ = tls_daemon
    cert, key = (
        (pki / "rogue" / "clientcert.pem", pki / "rogue" / "clientkey.pem")
        if which == "rogue"
        else (None, None)
    )
    try:
        got = _tls_client(port, pki / "cacert.pem", cert, key)
    except (ssl.SSLError, ConnectionError):
        return
    assert got != b"\x01", "a client without a CA-signed certificate was let in"


@pytest.mark.skipif(VIRSH is None, reason="virsh is not installed")
def test_plain_tcp_on_loopback(tls_daemon: tuple[RunningDaemon, int, int]) -> None:
    d, _, tcp_port = tls_daemon
    r = d.virsh("list", uri=f"test+tcp://127.0.0.1:{tcp_port}/default")
    assert r.returncode == 0, r.stderr


def test_plain_tcp_refused_off_loopback(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "virtstack.virt.daemon", "--socket", str(tmp_path / "s"), "--state-dir",
         str(tmp_path / "st"), "--listen-tcp", "0.0.0.0:0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 1
    assert "plain TCP is for tests on loopback only" in r.stderr
