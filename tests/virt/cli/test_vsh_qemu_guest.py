"""Differential on a real QEMU guest: virsh and vsh drive qemu:///system (real libvirtd, virtstackd) alike."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from vshdiff import Result, explain, virsh, vsh

from virtstack.testing.guest import Guest, domain_xml, wait_for_text
from virtstack.virt.client import connect
from virtstack.virt.drivers.base import DomainState

UUID = "5d3c1b1e-8f0a-4a55-8d7e-1f2e3d4c5b6a"
# ids grow with every start and CPU time is measured: the two values two runs cannot share
_VOLATILE = [
    (re.compile(r"^(Id: +)\d+$", re.MULTILINE), r"\1<id>"),
    (re.compile(r"^ \d+( +q1 )", re.MULTILINE), r" <id>\1"),
    (re.compile(r"^(CPU time: +)\d+\.\ds$", re.MULTILINE), r"\1<t>"),
]


def _normalize(r: Result) -> Result:
    out = r.stdout
    for pattern, repl in _VOLATILE:
        out = pattern.sub(repl, out)
    return Result(r.status, out, r.stderr)


def _session(tool: object, uri: str, xml: Path, log: Path, guest: Guest) -> list[Result]:
    run = virsh if tool == "virsh" else vsh
    c = ["-c", uri]
    steps = [run([*c, f"define {xml}; start q1; list; dominfo q1; domstate q1 --reason; suspend q1; "
                      "domstate q1 --reason; resume q1; domstate q1 --reason"])]
    wait_for_text(log, guest.marker, timeout=60)
    steps.append(run([*c, "shutdown q1"]))
    with connect(uri) as conn:
        dom = conn.lookup_by_name("q1")
        deadline = time.monotonic() + 60
        while dom.state()[0] != DomainState.SHUTOFF and time.monotonic() < deadline:
            time.sleep(0.1)
    steps.append(run([*c, "domstate q1 --reason; list --all; dominfo q1; undefine q1; list --all"]))
    return [_normalize(s) for s in steps]


@pytest.mark.qemu
def test_guest_lifecycle_matches_virsh(qemu_uri: str, guest: Guest, tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    xml = tmp_path / "q1.xml"
    xml.write_text(domain_xml("q1", guest, uuid=UUID, serial_log=log))
    uri = qemu_uri
    try:
        expected = _session("virsh", uri, xml, log, guest)
        got = _session("vsh", uri, xml, log, guest)
    finally:
        with connect(uri) as conn:
            for dom in conn.list_all_domains():
                if dom.name == "q1":
                    if dom.is_active():
                        dom.destroy()
                    if dom.is_persistent():
                        dom.undefine()
    assert "shut off (shutdown)" in expected[2].stdout, expected[2]
    for step, (e, g) in enumerate(zip(expected, got, strict=True)):
        assert e == g, f"step {step}:\n{explain(e, g)}"
