"""Shared bench plumbing: timing samples, the results table, ratios, marker waits, daemon RSS."""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Targets, in the order the final table lists them; the first two are baselines.
RAW_QEMU = "raw-qemu"
LIBVIRTD = "libvirtd"
DRIVER = "virtstack-driver"
VIRTSTACKD = "virtstackd"

MARKER_POLL_S = 0.002
"""Console logs are polled this often; the same poll for every target keeps the comparison fair."""


@dataclass(frozen=True)
class Stats:
    """Samples of one measurement, in its unit (seconds for times, MiB for memory)."""

    samples: tuple[float, ...]
    unit: str = "s"

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def short(self) -> str:
        """Just the median with its unit: `1.19 ms`."""
        if self.unit != "s":
            return f"{self.median:.1f} {self.unit}"
        scale, unit = _time_scale(self.median)
        return f"{_num(self.median * scale)} {unit}"

    def describe(self) -> str:
        """`1.19 ms (min 1.02, max 2.31, n=50)`, scaled to a readable unit."""
        if self.unit != "s":
            if len(self.samples) == 1:
                return f"{self.median:.1f} {self.unit}"
            return f"{self.median:.1f} {self.unit} (min {min(self.samples):.1f}, n={len(self.samples)})"
        scale, unit = _time_scale(self.median)
        text = f"{_num(self.median * scale)} {unit}"
        if len(self.samples) > 1:
            low, high = min(self.samples) * scale, max(self.samples) * scale
            text += f" (min {_num(low)}, max {_num(high)}, n={len(self.samples)})"
        return text


def _num(value: float) -> str:
    """Three significant digits without switching to exponent notation for big numbers."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _time_scale(seconds: float) -> tuple[float, str]:
    if seconds >= 1:
        return 1.0, "s"
    if seconds >= 1e-3:
        return 1e3, "ms"
    return 1e6, "us"


@dataclass
class Results:
    """Every figure of one `python -m bench` run: results[target][metric] -> Stats; notes per target."""

    figures: dict[str, dict[str, Stats]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    daemon_pids: dict[str, int] = field(default_factory=dict)
    """Daemons the run started, so a test can check they were stopped."""

    def add(self, target: str, metric: str, stats: Stats) -> Stats:
        self.figures.setdefault(target, {})[metric] = stats
        print(f"  {target:17} {metric:28} {stats.describe()}", flush=True)
        return stats

    def note(self, target: str, text: str) -> None:
        self.notes.setdefault(target, []).append(text)
        print(f"  {target:17} note: {text}", flush=True)

    def get(self, target: str, metric: str) -> Stats | None:
        return self.figures.get(target, {}).get(metric)

    def ratios(self) -> list[tuple[str, str, str, float]]:
        """(metric, target, baseline, target median / baseline median) for every comparable pair.

        Boot figures compare with raw QEMU (same guest, same argv); API and memory figures with the
        real libvirtd (same client, same calls).
        """
        out: list[tuple[str, str, str, float]] = []
        for target, metrics in self.figures.items():
            if target == RAW_QEMU:
                continue
            for metric, stats in metrics.items():
                for baseline in (RAW_QEMU, LIBVIRTD):
                    base = self.get(baseline, metric)
                    if baseline != target and base is not None and base.median > 0:
                        out.append((metric, target, baseline, stats.median / base.median))
        return out

    def to_json(self) -> dict[str, object]:
        return {
            "figures": {t: {m: {"unit": s.unit, "samples": list(s.samples), "median": s.median}
                            for m, s in ms.items()} for t, ms in self.figures.items()},
            "ratios": [{"metric": m, "target": t, "baseline": b, "ratio": r} for m, t, b, r in self.ratios()],
            "notes": self.notes,
            "daemon_pids": self.daemon_pids,
        }  # fmt: skip


def time_calls(fn: Callable[[], object], count: int) -> Stats:
    """Time `count` calls of a synchronous function, one sample each."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Stats(tuple(samples))


def log_has(path: Path, text: str) -> bool:
    try:
        return text in path.read_text(errors="replace")
    except FileNotFoundError:
        return False


def wait_marker(path: Path, text: str, timeout: float = 60.0) -> float:
    """Block until `text` is in the console log at `path`; returns perf_counter() when seen."""
    deadline = time.monotonic() + timeout
    while not log_has(path, text):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{text!r} not in {path} after {timeout:.0f} s")
        time.sleep(MARKER_POLL_S)
    return time.perf_counter()


async def await_marker(path: Path, text: str, timeout: float = 60.0) -> float:
    """Async wait_marker, for benchmarks that drive asyncio APIs."""
    deadline = time.monotonic() + timeout
    while not log_has(path, text):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{text!r} not in {path} after {timeout:.0f} s")
        await asyncio.sleep(MARKER_POLL_S)
    return time.perf_counter()


def rss_mib(pid: int) -> float:
    """Resident set size of a process, from /proc/PID/status (VmRSS, kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for pid {pid}")


def domain_name(prefix: str, index: int) -> str:
    return f"{prefix}-{index:04d}"


@dataclass(frozen=True)
class Options:
    """Iteration counts, so a smoke run can shrink every benchmark to a fraction of a second."""

    api_iterations: int = 200
    """define+undefine and lookup+XML repetitions."""
    domains: int = 1000
    """Domains defined for the listAllDomains and RSS-with-domains figures (0 skips them)."""
    list_iterations: int = 20
    boots: int = 2
    """Guest boots per target for start-to-marker (0 skips booting)."""
    boot_timeout: float = 60.0
    workdir: Path = Path("/tmp")


def is_listening(path: Path) -> bool:
    """True once a UNIX socket accepts connections; its file appears at bind(), before listen()."""
    if not path.exists():
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True
