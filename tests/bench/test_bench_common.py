"""The bench's figures and ratio table: medians, units, which baseline each figure is compared with."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from bench.common import (
    DRIVER,
    LIBVIRTD,
    RAW_QEMU,
    VIRTSTACKD,
    Results,
    Stats,
    rss_mib,
    time_calls,
    wait_marker,
)


def test_stats_median_and_description() -> None:
    stats = Stats((0.001, 0.003, 0.002))
    assert stats.median == 0.002
    assert stats.describe() == "2 ms (min 1, max 3, n=3)"
    assert Stats((2.5,)).describe() == "2.5 s"
    assert Stats((0.0000123,)).describe() == "12.3 us"
    assert Stats((29.46,), "MiB").describe() == "29.5 MiB"


def test_ratios_pair_each_figure_with_its_baselines() -> None:
    results = Results()
    results.add(RAW_QEMU, "start-to-marker", Stats((2.0,)))
    results.add(LIBVIRTD, "start-to-marker", Stats((2.5,)))
    results.add(LIBVIRTD, "define+undefine", Stats((0.002,)))
    results.add(DRIVER, "start-to-marker", Stats((2.2,)))
    results.add(VIRTSTACKD, "define+undefine", Stats((0.001,)))
    ratios = {(m, t, b): r for m, t, b, r in results.ratios()}
    assert ratios[("start-to-marker", LIBVIRTD, RAW_QEMU)] == pytest.approx(1.25)
    assert ratios[("start-to-marker", DRIVER, RAW_QEMU)] == pytest.approx(1.1)
    assert ratios[("start-to-marker", DRIVER, LIBVIRTD)] == pytest.approx(0.88)
    assert ratios[("define+undefine", VIRTSTACKD, LIBVIRTD)] == pytest.approx(0.5)
    assert ("define+undefine", LIBVIRTD, LIBVIRTD) not in ratios
    assert len(ratios) == 4
    assert results.to_json()["ratios"]


def test_time_calls_takes_one_sample_per_call() -> None:
    stats = time_calls(lambda: time.sleep(0.001), 3)
    assert len(stats.samples) == 3 and min(stats.samples) >= 0.001


def test_wait_marker_sees_text_and_times_out(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_text("booting\nVIRTSTACK-GUEST-READY uptime=1.0\n")
    assert wait_marker(log, "VIRTSTACK-GUEST-READY", timeout=1) > 0
    with pytest.raises(TimeoutError):
        wait_marker(tmp_path / "missing.log", "X", timeout=0.05)


def test_rss_of_this_process_is_plausible() -> None:
    import os

    assert 5 < rss_mib(os.getpid()) < 4096
