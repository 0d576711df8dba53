"""TCP and TLS transports against virtstackd, with real virsh (GnuTLS) on the same URIs as the oracle."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from virtstack.testing.servers import PrivateVirtstackd, start_virtstackd
from virtstack.virt.client import VirtError, connect

OPENSSL = shutil.which("openssl")
VIRSH = shutil.which("virsh")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([OPENSSL or "openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _issue(d: Path, name: str, cn: str, extensions: str) -> None:
    (d / f"{name}.ext").write_text(extensions)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}key.pem", "-out", f"{name}.csr",
             "-subj", f"/CN={cn}", cwd=d)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "cacert.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}cert.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for localhost and a client certificate, in libvirt's pkipath layout."""
    if OPENSSL is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "cacert.pem",
             "-days", "2", "-subj", "/CN=virtstack test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    usage = "keyUsage=critical,digitalSignature,keyEncipherment\n"
    _issue(d, "server", "localhost", usage + "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _issue(d, "client", "virtstack-client", usage + "extendedKeyUsage=clientAuth\n")
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def tls_daemon(pki: Path) -> Iterator[tuple[PrivateVirtstackd, int, int]]:
    tcp, tls = _free_port(), _free_port()
    daemon = start_virtstackd(extra_args=(
        "--listen-tcp", f"127.0.0.1:{tcp}", "--listen-tls", f"127.0.0.1:{tls}",
        "--tls-cert", str(pki / "servercert.pem"), "--tls-key", str(pki / "serverkey.pem"),
        "--tls-ca", str(pki / "cacert.pem"),
    ))
    try:
        yield daemon, tcp, tls
    finally:
        daemon.stop()


def _wait_listening(port: int) -> None:
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)


def test_tcp(tls_daemon: tuple[PrivateVirtstackd, int, int]) -> None:
    _daemon, tcp, _tls = tls_daemon
    _wait_listening(tcp)
    with connect(f"test+tcp://127.0.0.1:{tcp}/default") as conn:
        assert [d.name for d in conn.list_all_domains()] == ["test"]


def test_tls_with_client_certificate(tls_daemon: tuple[PrivateVirtstackd, int, int], pki: Path) -> None:
    _daemon, _tcp, tls = tls_daemon
    _wait_listening(tls)
    uri = f"test+tls://localhost:{tls}/default?pkipath={pki}"
    with connect(uri) as conn:
        assert conn.get_hostname()
        assert conn.lookup_by_name("test").is_active()
    if VIRSH:  # the real client on the same URI: same answer as ours
        ours = subprocess.run([sys.executable, "-m", "virtstack.virt.cli", "-c", uri, "list --all; hostname"],
                              capture_output=True, text=True, timeout=60)
        theirs = subprocess.run([VIRSH, "-c", uri, "list --all; hostname"], capture_output=True, text=True,
                                timeout=60)
        assert theirs.returncode == 0, theirs.stderr
        assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)


def test_tls_refuses_an_unknown_server(tls_daemon: tuple[PrivateVirtstackd, int, int], pki: Path,
                                       tmp_path: Path) -> None:
    """A CA that did not sign the server's certificate: the handshake fails, no RPC happens."""
    _daemon, _tcp, tls = tls_daemon
    _wait_listening(tls)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "cacert.pem",
             "-days", "2", "-subj", "/CN=another CA", cwd=tmp_path)
    for name in ("clientcert.pem", "clientkey.pem"):
        shutil.copy(pki / name, tmp_path / name)
    with pytest.raises(VirtError) as err:
        connect(f"test+tls://localhost:{tls}/default?pkipath={tmp_path}")
    assert err.value.domain == 7


def test_tls_without_credentials_says_which_file(tmp_path: Path) -> None:
    with pytest.raises(VirtError) as err:
        connect(f"test+tls://localhost:1/default?pkipath={tmp_path}")
    assert err.value.message == f"Cannot read CA certificate '{tmp_path}/cacert.pem': No such file or directory"
