"""`virtstackd`: run the daemon in the foreground (`--socket PATH --state-dir DIR` for private instances)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from virtstack.common.log import setup_logging
from virtstack.virt.daemon.server import Daemon, DaemonConfig

SYSTEM_SOCKET = Path("/run/virtstack/virtstackd-sock")
SYSTEM_STATE_DIR = Path("/var/lib/virtstack")


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    return (host.strip("[]") or "127.0.0.1", int(port) if port else default_port)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="virtstackd", description="Serve the libvirt RPC protocol.")
    p.add_argument("--socket", type=Path, default=SYSTEM_SOCKET, help="read-write unix socket path")
    p.add_argument("--ro-socket", type=Path, help="read-only socket path (default: SOCKET-ro)")
    p.add_argument("--no-ro-socket", action="store_true", help="do not listen on a read-only socket")
    p.add_argument("--state-dir", type=Path, default=SYSTEM_STATE_DIR, help="where drivers keep state")
    p.add_argument("--socket-mode", type=lambda s: int(s, 8), default=0o600, help="octal, default 0600")
    p.add_argument("--ro-socket-mode", type=lambda s: int(s, 8), default=0o666, help="octal, default 0666")
    p.add_argument("--socket-group", help="group owning the sockets")
    p.add_argument("--listen-tcp", metavar="HOST[:PORT]", help="plain TCP (loopback only; for tests)")
    p.add_argument("--listen-tls", metavar="HOST[:PORT]", help="TCP with TLS and client certificates")
    p.add_argument("--tls-cert", type=Path, help="server certificate (PEM)")
    p.add_argument("--tls-key", type=Path, help="server private key (PEM)")
    p.add_argument("--tls-ca", type=Path, help="CA certificate that signs client certificates")
    p.add_argument("--max-clients", type=int, default=5000)
    p.add_argument("--max-requests", type=int, default=5, help="concurrent calls per client")
    p.add_argument("--max-packet", type=int, default=33554432, help="largest packet accepted, in bytes")
    p.add_argument("--keepalive-interval", type=float, default=5.0, help="seconds; 0 disables server pings")
    p.add_argument("--keepalive-count", type=int, default=5)
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    return p


def config_from_args(args: argparse.Namespace) -> DaemonConfig:
    return DaemonConfig(
        socket_path=args.socket,
        state_dir=args.state_dir,
        ro_socket_path=args.ro_socket,
        enable_ro=not args.no_ro_socket,
        socket_mode=args.socket_mode,
        ro_socket_mode=args.ro_socket_mode,
        socket_group=args.socket_group,
        tcp_listen=_host_port(args.listen_tcp, 16509) if args.listen_tcp else None,
        tls_listen=_host_port(args.listen_tls, 16514) if args.listen_tls else None,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_ca=args.tls_ca,
        max_clients=args.max_clients,
        max_requests=args.max_requests,
        max_packet=args.max_packet,
        keepalive_interval=args.keepalive_interval,
        keepalive_count=args.keepalive_count,
    )


async def _run(config: DaemonConfig) -> None:
    daemon = Daemon(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.stop)
    await daemon.serve()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        asyncio.run(_run(config_from_args(args)))
    except (ValueError, OSError) as exc:
        print(f"virtstackd: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
