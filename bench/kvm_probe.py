"""What the KVM speed probe costs (cold, and cached per boot) and what it says about this host."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import Results, Stats, time_calls, wait_marker
from virtstack.kvm import accel
from virtstack.kvm.probe import probe
from virtstack.testing.guest import Guest, qemu_argv

TARGET = "kvm-probe"


def run(results: Results, iterations: int = 3) -> str:
    """Time the probe; returns the domain type every other benchmark should use (asked, not assumed)."""
    cold = [probe() for _ in range(max(1, iterations))]
    results.add(TARGET, "probe (uncached)", Stats(tuple(r.elapsed_s for r in cold)))
    results.note(TARGET, cold[-1].summary())
    with tempfile.TemporaryDirectory(prefix="vs-bench-probe-") as tmp:
        cache = Path(tmp) / "probe.json"
        start = time.perf_counter()
        accel.choose_domain_type(cache=cache)
        results.add(TARGET, "choose_accel first call", Stats((time.perf_counter() - start,)))
        accel.forget()
        results.add(TARGET, "choose_accel from file", time_calls(_from_file(cache), 20))
        results.add(TARGET, "choose_accel memoised", time_calls(lambda: accel.choose_accel(cache=cache), 1000))
    accel.forget()
    domain_type = accel.choose_domain_type()  # the per-boot system cache, as every other caller asks
    results.note(TARGET, f"domain type chosen for the guests: {domain_type}")
    return domain_type


def check_verdict(results: Results, guest: Guest, timeout: float) -> None:
    """Boot the fixture once with TCG and once with KVM: does the probe's verdict match reality?

    A slow KVM may never reach the marker, so each boot is cut off after `timeout` seconds.
    """
    with tempfile.TemporaryDirectory(prefix="vs-bench-accel-") as tmp:
        for name in ("tcg", "kvm"):
            log = Path(tmp) / f"{name}.log"
            argv = [*qemu_argv(guest, accel=name), "-chardev", f"file,id=s0,path={log}",
                    "-device", "isa-serial,chardev=s0"]  # fmt: skip
            start = time.perf_counter()
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)  # fmt: skip
            try:
                seen = wait_marker(log, guest.marker, timeout)
                results.add(TARGET, f"boot-to-marker, {name}", Stats((seen - start,)))
            except TimeoutError:
                size = log.stat().st_size if log.exists() else 0
                results.note(TARGET, f"{name}: no marker within {timeout:.0f} s ({size} bytes of console output)")
            finally:
                proc.kill()
                proc.wait(10)


def _from_file(cache: Path) -> Callable[[], str]:
    """A call that must read the cache file (memo dropped first)."""

    def call() -> str:
        accel.forget()
        return accel.choose_accel(cache=cache)

    return call
