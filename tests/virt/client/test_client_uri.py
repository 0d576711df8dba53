"""URI handling: what is sent in CONNECT_OPEN, where the socket is, and libvirt's errors for bad URIs."""

from __future__ import annotations

from pathlib import Path

import pytest

from virtstack.virt.client import VirtError, parse_uri
from virtstack.virt.client import uri as urimod

libvirt = pytest.importorskip("libvirt", reason="libvirt-python (python3-libvirt) is not installed")


@pytest.mark.parametrize(
    ("uri", "name", "transport", "host", "port"),
    [
        ("qemu+unix:///system?socket=/tmp/s", "qemu:///system", "unix", "", None),
        ("test+unix:///default?socket=/x/y", "test:///default", "unix", "", None),
        ("qemu:///system", "qemu:///system", None, "", None),
        ("qemu+tls://host.example/system", "qemu:///system", "tls", "host.example", 16514),
        ("qemu+tcp://10.0.0.2:1234/system?no_verify=1&foo=bar", "qemu:///system?foo=bar", "tcp", "10.0.0.2", 1234),
        ("qemu://host/system", "qemu:///system", "tls", "host", 16514),
        ("test+unix:///default?socket=/s&name=test:///other", "test:///other", "unix", "", None),
    ],
)
def test_parse(uri: str, name: str, transport: str | None, host: str, port: int | None) -> None:
    parsed = parse_uri(uri)
    assert (parsed.open_name(), parsed.transport, parsed.host, parsed.port) == (name, transport, host, port)


def test_socket_param_wins() -> None:
    assert parse_uri("qemu+unix:///system?socket=/tmp/s").socket_path() == "/tmp/s"


def test_default_sockets_follow_libvirts_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(urimod, "RUN_DIR", tmp_path)
    qemu = parse_uri("qemu:///system")
    assert qemu.socket_path() == f"{tmp_path}/libvirt-sock"
    assert qemu.socket_path(readonly=True) == f"{tmp_path}/libvirt-sock-ro"
    (tmp_path / "virtqemud-sock").touch()  # the modular daemon wins when its socket exists
    assert qemu.socket_path() == f"{tmp_path}/virtqemud-sock"
    assert parse_uri("qemu:///system?mode=legacy").socket_path() == f"{tmp_path}/libvirt-sock"


def test_default_socket_is_where_libvirt_looks() -> None:
    # libvirt-python fails on the same path when nothing listens there
    if Path("/var/run/libvirt/libvirt-sock").exists() or Path("/var/run/libvirt/virtqemud-sock").exists():
        pytest.skip("a system libvirt daemon is running here")
    with pytest.raises(libvirt.libvirtError) as theirs:
        libvirt.open("qemu:///system")
    assert parse_uri("qemu:///system").socket_path() in theirs.value.get_error_message()


def test_unknown_transport_reads_like_libvirt() -> None:
    uri = "qemu+carrier-pigeon://h/system"
    with pytest.raises(libvirt.libvirtError) as theirs:
        libvirt.open(uri)
    with pytest.raises(VirtError) as ours:
        parse_uri(uri)
    assert (ours.value.code, ours.value.domain, ours.value.message) == (
        theirs.value.get_error_code(),
        theirs.value.get_error_domain(),
        theirs.value.get_error_message(),
    )


def test_query_parameters_read_like_libvirt() -> None:
    """'+' stays a plus (libvirt decodes only %XX), so a socket path holding one is the path libvirt uses."""
    uri = "qemu+unix:///system?socket=/nonexistent/vs-a+b%20c"
    with pytest.raises(libvirt.libvirtError) as theirs:
        libvirt.open(uri)
    params = parse_uri(uri).params
    assert params == {"socket": "/nonexistent/vs-a+b c"}
    assert f"'{params['socket']}'" in theirs.value.get_error_message()
    assert urimod.query_params("a=1;b=2") == {"a": "1", "b": "2"}
    assert urimod.query_params("=x&&c") == {"c": ""}
