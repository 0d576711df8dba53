"""`python -m bench` with tiny counts, so the harness cannot rot; figures are checked to exist, not timed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench.libvirtd import why_unavailable
from bench.virtstackd import why_unavailable as virtstackd_unavailable

REPO = Path(__file__).resolve().parents[2]


def _bench(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--json", str(out), *args],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(proc.stdout)
    return json.loads(out.read_text())


@pytest.mark.skipif(why_unavailable() is not None, reason=f"private libvirtd cannot run: {why_unavailable()}")
def test_libvirtd_api_figures_with_tiny_counts(tmp_path: Path) -> None:
    data = _bench(tmp_path, "--only", "libvirtd", "--api-iterations", "3", "--domains", "5",
                  "--list-iterations", "2", "--boots", "0")  # fmt: skip
    figures = data["figures"]["libvirtd"]
    for metric in ("daemon RSS idle", "define+undefine", "lookup+XMLDesc", "listAllDomains (5 doms)",
                   "daemon RSS 5 doms"):  # fmt: skip
        assert metric in figures, (metric, data["notes"])
    assert len(figures["define+undefine"]["samples"]) == 3
    assert data["figures"]["kvm-probe"]["probe (uncached)"]["median"] > 0
    assert not Path(f"/proc/{data['daemon_pids']['libvirtd']}").exists(), "the private libvirtd was left running"


@pytest.mark.qemu
@pytest.mark.skipif(not os.access("/usr/bin/qemu-system-x86_64", os.X_OK), reason="QEMU is not installed")
def test_raw_qemu_and_driver_boot_to_marker_with_ratios(tmp_path: Path) -> None:
    data = _bench(tmp_path, "--only", "raw-qemu,driver", "--api-iterations", "2", "--domains", "3",
                  "--list-iterations", "1", "--boots", "1", "--boot-timeout", "60")  # fmt: skip
    raw = data["figures"]["raw-qemu"]
    assert 0 < raw["create returns"]["median"] < raw["start-to-marker"]["median"]
    assert any(note.startswith("argv from our driver") for note in data["notes"]["raw-qemu"]), data["notes"]
    ours = data["figures"].get("virtstack-driver", {})
    notes = data["notes"].get("virtstack-driver", [])
    for metric in ("define+undefine", "lookup+XMLDesc", "listAllDomains (3 doms)", "start-to-marker"):
        assert metric in ours, (metric, notes)
    pairs = {(r["metric"], r["target"], r["baseline"]) for r in data["ratios"]}
    assert ("start-to-marker", "virtstack-driver", "raw-qemu") in pairs


@pytest.mark.skipif(virtstackd_unavailable() is not None, reason=f"virtstackd: {virtstackd_unavailable()}")
def test_virtstackd_and_our_client_figures_with_tiny_counts(tmp_path: Path) -> None:
    data = _bench(tmp_path, "--only", "virtstackd,client", "--api-iterations", "3", "--domains", "5",
                  "--list-iterations", "2", "--boots", "0")  # fmt: skip
    for target in ("virtstackd", "client+virtstackd"):
        figures = data["figures"].get(target, {})
        notes = " | ".join(data["notes"].get(target, []))
        assert "daemon start (socket up)" in figures, notes
        assert not Path(f"/proc/{data['daemon_pids'][target]}").exists(), f"{target}'s daemon was left running"
        for metric in ("daemon RSS idle", "define+undefine", "lookup+XMLDesc", "listAllDomains (5 doms)"):
            assert metric in figures, (target, metric, notes)


def test_kvm_only_run_reports_the_probe_and_chosen_domain_type(tmp_path: Path) -> None:
    data = _bench(tmp_path, "--only", "kvm")
    assert set(data["figures"]) == {"kvm-probe"}
    notes = data["notes"]["kvm-probe"]
    assert notes[0].startswith("kvm: ") and notes[-1] in (
        "domain type chosen for the guests: qemu",
        "domain type chosen for the guests: kvm",
    )


def test_unknown_benchmark_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.__main__ import main

    assert main(["--only", "kvm,nonsense"]) == 2
    assert "unknown benchmark(s): nonsense" in capsys.readouterr().err
