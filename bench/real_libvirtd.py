"""The real libvirtd 9.0 (a private instance) as a target: the baseline for API and memory figures."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

from bench.common import LIBVIRTD, Results, Stats
from bench.libvirt_api import open_libvirt
from bench.libvirtd import PrivateLibvirtd, why_unavailable
from bench.target import Target
from virtstack.testing.guest import Guest


def open_target(stack: ExitStack, results: Results, guest: Guest, domain_type: str, workdir: Path) -> Target | None:
    """Start a private libvirtd (stopped when `stack` closes) and connect; None, with a note, if it can't."""
    reason = why_unavailable()
    if reason is not None:
        results.note(LIBVIRTD, f"skipped: {reason}; boot figures compare with raw QEMU only")
        return None
    start = time.perf_counter()
    daemon = stack.enter_context(PrivateLibvirtd())
    results.daemon_pids[LIBVIRTD] = daemon.pid
    results.add(LIBVIRTD, "daemon start (socket up)", Stats((time.perf_counter() - start,)))
    target = open_libvirt(LIBVIRTD, daemon.uri, daemon.pid, guest, domain_type, workdir)
    stack.callback(target.close)
    return target
