"""Client side of libvirt's TLS transport (qemu+tls://): x509 files, the TLS context, the server's verdict byte.

Files follow libvirt's client defaults (virnettlscontext.c) or `?pkipath=DIR` (cacert.pem,
clientcert.pem, clientkey.pem inside it); `?no_verify=1` skips checking the server's certificate. After
the handshake the server sends one byte, 0x01, once our certificate passed its checks; only then do
RPC packets flow.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from virtstack.virt.client.uri import ConnectURI
from virtstack.virt.errors import ErrorCode, ErrorDomain, error_factory

Error = error_factory(ErrorDomain.RPC)

DEFAULT_CA = Path("/etc/pki/CA/cacert.pem")
DEFAULT_CERT = Path("/etc/pki/libvirt/clientcert.pem")
DEFAULT_KEY = Path("/etc/pki/libvirt/private/clientkey.pem")
#: what the server writes after the handshake when it accepts our certificate
CERT_OK = b"\x01"


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path

    @classmethod
    def for_uri(cls, parsed: ConnectURI) -> TlsFiles:
        pki = parsed.params.get("pkipath")
        if pki:
            d = Path(pki)
            return cls(d / "cacert.pem", d / "clientcert.pem", d / "clientkey.pem")
        return cls(DEFAULT_CA, DEFAULT_CERT, DEFAULT_KEY)


def client_context(parsed: ConnectURI) -> ssl.SSLContext:
    """The TLS context for `parsed`; missing files give libvirt's "Cannot read ..." errors."""
    files = TlsFiles.for_uri(parsed)
    for label, path in (("CA certificate", files.ca), ("client certificate", files.cert), ("client key", files.key)):
        if not path.is_file():
            raise Error(ErrorCode.SYSTEM_ERROR, f"Cannot read {label} '{path}': No such file or directory")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        ctx.load_verify_locations(files.ca)
        ctx.load_cert_chain(files.cert, files.key)
    except (ssl.SSLError, OSError) as exc:
        raise Error(ErrorCode.SYSTEM_ERROR, f"Unable to load TLS credentials: {exc}") from None
    if parsed.params.get("no_verify") == "1":
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
