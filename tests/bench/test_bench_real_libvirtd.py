"""Without libvirtd the comparison says so and leaves only the raw-QEMU baseline."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest
from bench.common import LIBVIRTD, Results

from bench import real_libvirtd
from virtstack.testing.guest import Guest


def test_missing_libvirtd_is_reported_not_crashed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # This machine has libvirtd installed; its absence can only be simulated.
    monkeypatch.setattr(real_libvirtd, "why_unavailable", lambda: "libvirtd is not installed")
    results = Results()
    fake_guest = Guest(kernel=tmp_path / "k", initrd=tmp_path / "i", cmdline="")
    with ExitStack() as stack:
        assert real_libvirtd.open_target(stack, results, fake_guest, "qemu", tmp_path) is None
    assert LIBVIRTD not in results.figures
    assert results.notes[LIBVIRTD] == [
        "skipped: libvirtd is not installed; boot figures compare with raw QEMU only"
    ]
