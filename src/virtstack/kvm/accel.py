"""KVM or TCG? The probe's answer, cached once per boot so every caller after the first pays nothing.

Anything that picks an accelerator or a libvirt domain type on the user's behalf asks here. The cache is
a small JSON file keyed by /proc/sys/kernel/random/boot_id (a new boot may bring another kernel module),
written atomically; a missing, stale or unreadable cache just means probing again.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Literal

from virtstack.common.atomic import write_atomic
from virtstack.kvm.probe import KVM_DEVICE, ProbeResult, probe

Accel = Literal["kvm", "tcg"]
DomainType = Literal["kvm", "qemu"]

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
CACHE_ENV = "VIRTSTACK_KVM_PROBE_CACHE"
"""Overrides the cache file's path (tests, read-only /run)."""

_lock = threading.Lock()
_memo: dict[Path, ProbeResult] = {}


def default_cache_path() -> Path:
    """$VIRTSTACK_KVM_PROBE_CACHE, else /run/virtstack (root) or $XDG_RUNTIME_DIR, else the temp dir."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    if os.geteuid() == 0:
        base = Path("/run/virtstack")
    else:
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        base = Path(runtime) / "virtstack" if runtime else Path("/tmp") / f"virtstack-{os.geteuid()}"
    return base / "kvm-probe.json"


def boot_id() -> str:
    """This boot's identity; empty if the kernel does not tell (then the cache is never trusted)."""
    try:
        return BOOT_ID_PATH.read_text().strip()
    except OSError:
        return ""


def _read_cache(path: Path, current_boot: str, device: str) -> ProbeResult | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not current_boot or data.get("boot_id") != current_boot:
        return None
    if data.get("device") != device or not isinstance(data.get("result"), dict):
        return None
    try:
        return ProbeResult.from_json(data["result"])
    except TypeError:
        return None


def _write_cache(path: Path, current_boot: str, device: str, result: ProbeResult) -> None:
    payload = {"boot_id": current_boot, "device": device, "result": result.to_json()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(payload, indent=1) + "\n", mode=0o644)
    except OSError:
        pass  # a cache we cannot write only costs the next process one more probe


def probe_cached(
    *, cache: Path | None = None, device: str = KVM_DEVICE, refresh: bool = False
) -> ProbeResult:
    """The probe result for this boot: from memory, else the cache file, else a fresh probe."""
    path = cache if cache is not None else default_cache_path()
    with _lock:
        if not refresh and path in _memo:
            return _memo[path]
        current_boot = boot_id()
        result = None if refresh else _read_cache(path, current_boot, device)
        if result is None:
            result = probe(device)
            if current_boot and result.definitive:
                _write_cache(path, current_boot, device, result)
        _memo[path] = result
        return result


def choose_accel(*, cache: Path | None = None, device: str = KVM_DEVICE) -> Accel:
    """'kvm' only when the probe found KVM usable and fast; otherwise 'tcg'."""
    result = probe_cached(cache=cache, device=device)
    return "kvm" if result.usable and result.fast else "tcg"


def choose_domain_type(*, cache: Path | None = None, device: str = KVM_DEVICE) -> DomainType:
    """The libvirt `<domain type=...>` matching choose_accel(): 'kvm' or 'qemu' (TCG)."""
    return "kvm" if choose_accel(cache=cache, device=device) == "kvm" else "qemu"


def forget() -> None:
    """Drop the in-process memo (the file cache stays); for tests and long-lived daemons."""
    with _lock:
        _memo.clear()
