"""Score domain XML round trips (parse + QEMU defaults + format) against libvirt's local and upstream outputs."""

from __future__ import annotations

import csv
import dataclasses
import difflib
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from virtstack.virt.errors import VirtError

_MAC_RE = re.compile(r"^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$")
GENERATED_MAC = "52:54:00:xx:xx:xx"


@dataclass
class Outcome:
    """Our answer for one input: the formatted XML, or the error we raised."""

    xml: str | None
    error: VirtError | None


def load_caps() -> Any:
    """The capabilities of the real QEMU binary on this machine (probed once, then cached)."""
    from virtstack.virt.drivers.qemu.capabilities import probe_qemu_caps

    return probe_qemu_caps()


def harness_caps(caps: Any, dialect: str) -> Any:
    """libvirt's test harness view of the same QEMU.

    It does not canonicalise machine aliases, so `pc`/`q35` stay as written. The `nocaps` and `handcaps`
    dialects (DO_TEST_NOCAPS / DO_TEST with a few flags) know no devices and no CPU models, so no default
    that depends on them is filled in (handcaps' few hand-picked flags are not modelled).
    """
    from virtstack.virt.drivers.qemu.capabilities import QemuCaps

    class HarnessCaps(QemuCaps):
        def canonical_machine(self, name: str) -> str:
            return name

    values = {f.name: getattr(caps, f.name) for f in dataclasses.fields(caps)}
    if dialect != "latest":
        values.update(qom_types=frozenset(), cpu_models=[])
    return HarnessCaps(**values)


def run_one(xml: str, caps: Any, *, harness: str | None = None) -> Outcome:
    """What `virsh define` + `virsh dumpxml --inactive --security-info` would give with our code
    (or, with `harness` set to a CAPS.tsv dialect, what libvirt's qemuxml2xml test harness would give:
    its capabilities, its qemu.conf, and no domain object, so no USB port assignment)."""
    from virtstack.virt.drivers.qemu.config import QemuDriverConfig
    from virtstack.virt.drivers.qemu.definition import parse_for_qemu
    from virtstack.virt.xml.domain import format_domain

    try:
        if harness:
            defn = parse_for_qemu(
                xml, harness_caps(caps, harness), config=QemuDriverConfig.harness(), usb_addresses=False
            )
        else:
            defn = parse_for_qemu(xml, caps)
        return Outcome(format_domain(defn, inactive=True, secure=True), None)
    except VirtError as e:
        return Outcome(None, e)


def canonical(xml: str, input_xml: str = "") -> str:
    """A form that ignores whitespace and attribute order; random MACs the input did not give compare equal."""
    parser = etree.XMLParser(remove_blank_text=True, remove_comments=True)
    root = etree.fromstring(xml.encode(), parser)
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        if el.text is not None:
            el.text = el.text.strip() or None
        el.tail = None
        items = sorted(el.attrib.items())
        el.attrib.clear()
        for k, v in items:
            el.set(k, v)
        parent = el.getparent()
        if el.tag == "mac" and parent is not None and parent.tag == "interface":
            addr = (el.get("address") or "").lower()
            if _MAC_RE.match(addr) and addr not in input_xml.lower():
                el.set("address", GENERATED_MAC)
    return etree.tostring(root, encoding="unicode", pretty_print=True)


def same(ours: str, expected: str, input_xml: str) -> bool:
    try:
        return canonical(ours, input_xml) == canonical(expected, input_xml)
    except etree.XMLSyntaxError:
        return False


def _groups(folder: Path) -> dict[str, str]:
    caps_file = folder / "CAPS.tsv"
    if not caps_file.is_file():
        return {}
    with caps_file.open() as f:
        return {row["name"]: row["caps_dialect"] for row in csv.DictReader(f, delimiter="\t")}


def main(folder: Path) -> int:
    """Print PASS/FAIL per case and scoreboard, then totals; exit status 0 (scores are the result)."""
    verbose = bool(os.environ.get("VIRTSTACK_CONFORMANCE_VERBOSE"))
    caps = load_caps()
    groups = _groups(folder)
    local_dir = folder / "libvirt-local"
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for inp in sorted(folder.glob("*.in.xml")):
        name = inp.name[: -len(".in.xml")]
        input_xml = inp.read_text()
        outcome = run_one(input_xml, caps)
        if local_dir.is_dir():
            err = local_dir / f"{name}.err"
            out = local_dir / f"{name}.out.xml"
            if err.is_file():
                _score(totals, "local", name, outcome.error is not None, verbose, outcome, None, input_xml)
            elif out.is_file():
                expected = out.read_text()
                ok = outcome.xml is not None and same(outcome.xml, expected, input_xml)
                _score(totals, "local", name, ok, verbose, outcome, expected, input_xml)
        upstream = folder / f"{name}.out.xml"
        if upstream.is_file():
            expected = upstream.read_text()
            harness_outcome = run_one(input_xml, caps, harness=groups.get(name, "latest"))
            ok = harness_outcome.xml is not None and same(harness_outcome.xml, expected, input_xml)
            board = f"upstream {groups.get(name, 'unknown')}"
            _score(totals, board, name, ok, False, outcome, expected, input_xml)
    for board in sorted(totals, key=lambda b: (b != "local", b)):
        passed, total = totals[board]
        print(f"{board}: {passed}/{total} passed")
    up = [v for k, v in totals.items() if k.startswith("upstream")]
    if up:
        print(f"upstream all: {sum(p for p, _ in up)}/{sum(t for _, t in up)} passed")
    return 0


def _score(
    totals: dict[str, list[int]],
    board: str,
    name: str,
    ok: bool,
    verbose: bool,
    outcome: Outcome,
    expected: str | None,
    input_xml: str,
) -> None:
    totals[board][1] += 1
    if ok:
        totals[board][0] += 1
    label = board.split()[0]
    print(f"{'PASS' if ok else 'FAIL'} {label} {name}")
    if ok or not verbose:
        return
    if outcome.error is not None:
        print(f"    error: {outcome.error}")
    elif expected is None:
        print("    expected a rejection, got XML")
    elif outcome.xml is not None:
        diff = difflib.unified_diff(
            canonical(expected, input_xml).splitlines(), canonical(outcome.xml, input_xml).splitlines(),
            "expected", "ours", lineterm="", n=1,
        )
        for line in list(diff)[2:40]:
            print(f"    {line}")
