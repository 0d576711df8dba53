"""The qemu-argv scoreboards over the shared libvirt samples must not fall below recorded floors."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path

import pytest

from virtstack.testing.conformance import qemu_argv

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "libvirt" / "samples" / "qemu-argv"
QEMU = "/usr/bin/qemu-system-x86_64"

# Raise these as the builder improves; never lower them to make a change pass.
FLOORS = {"local": 242, "upstream latest": 139}


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"reference samples {SAMPLES} are not beside the checkout")
@pytest.mark.skipif(
    not shutil.which(QEMU), reason=f"{QEMU} is not installed (the local scoreboard probes it)"
)
def test_qemu_argv_scoreboards_hold_their_floors() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert qemu_argv.main(SAMPLES) == 0
    text = out.getvalue()
    lines = text.splitlines()
    assert sum(1 for line in lines if line.startswith(("PASS local ", "FAIL local "))) == 242  # one per case
    totals = {m.group(1): (int(m.group(2)), int(m.group(3)))
              for m in re.finditer(r"^(local|upstream \S+): (\d+)/(\d+) passed$", text, re.M)}  # fmt: skip
    assert totals["local"][1] == 242 and totals["upstream latest"][1] == 164
    for board, floor in FLOORS.items():
        assert totals[board][0] >= floor, f"{board}: {totals[board][0]} < floor {floor}"
    assert not [line for line in lines if " crash " in line], "the builder raised a non-libvirt exception"
