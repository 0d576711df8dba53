"""Score `xml_to_native` against libvirt 9.0's qemu-argv golden pairs on two scoreboards.

Layout (shared/libvirt/samples/qemu-argv): `NAME.xml` with `NAME.args` or `NAME.err` (upstream test
suite, one word per line), `libvirt-local/NAME.args|.err` (the real libvirtd 9.0 on this kind of machine,
`virsh domxml-to-native` one-liner), `HARNESS.tsv` (how upstream's harness produced each file).

Scoreboards
- **local**: our command for the real `/usr/bin/qemu-system-x86_64` (probed capabilities) and a stock
  qemu.conf (`QemuDriverConfig.system()`), against `libvirt-local/`.
- **upstream**: the same code fed the harness settings: `QemuDriverConfig.harness()` plus the per-case
  `qemu.conf`/env overrides HARNESS.tsv names that map onto config fields, monitor on the harness's
  fd 1729, and capabilities of libvirt's "latest" x86_64 dump (QEMU 7.2.50 snapshot) modelled as a
  fixture (`latest_caps`): the probed 7.2 facts with version 7.2.50, the `machine.hpet` form
  (`-machine …,hpet=off` instead of `-no-hpet`) and no machine aliases (the harness never
  canonicalises `pc`/`q35`), NICs kept as written (no domxml-to-native tap rewrite) and the
  harness's fake CD-ROM check (`/dev/cdrom*`), descriptors for chardev sockets and files (libvirt
  passes those as fds when it really starts a guest) and a DRM render node. `nocaps`/`handcaps` cases get the same fixture: we model one QEMU, so
  their older-dialect expectations count as failures; the totals are reported per group
  (caps_dialect x plain/overrides).

Normalisation before comparing word lists (both sides):
- the environment prefix (leading `KEY=value` words) is dropped;
- file-descriptor numbers are replaced by `N` (`fd=25`, `"fd":"25"`, `/dev/fdset/3`, `-add-fd …fd=N`),
  since they are whatever the daemon happened to open;
- nothing else: per-domain directories are generated, not mapped, because each scoreboard's config
  names the same base directory (`/var/lib/libvirt/qemu` locally, `/tmp/lib` in the harness).
An `.err` case passes when we reject the XML with a libvirt error; the line notes whether the message
is word for word the same (`msg=same|differs`).

The generator never reads the expected files; only this scorer does.
"""

from __future__ import annotations

import csv
import dataclasses
import re
import shlex
import sys
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from virtstack.virt.drivers.qemu.capabilities import QemuCaps, probe_qemu_caps
from virtstack.virt.drivers.qemu.command.model import RuntimeContext
from virtstack.virt.drivers.qemu.config import QemuDriverConfig
from virtstack.virt.errors import VirtError

HARNESS_MONITOR_FD = 1729
_ENV_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_FD_PATTERNS = [
    (re.compile(r"\bfd=\d+"), "fd=N"),
    (re.compile(r'"fd":"\d+"'), '"fd":"N"'),
    (re.compile(r'"fd":\d+'), '"fd":N'),
    (re.compile(r"/dev/fdset/\d+"), "/dev/fdset/N"),
    (re.compile(r"\bset=\d+"), "set=N"),
    (re.compile(r'"vhostfd":"\d+"'), '"vhostfd":"N"'),
]


@dataclass
class Outcome:
    """One case on one scoreboard."""

    name: str
    passed: bool
    note: str


def latest_caps(real: QemuCaps) -> QemuCaps:
    """libvirt 9.0's caps_8.0.0.x86_64 dialect (QEMU 7.2.50) derived from a probed QEMU 7.2."""
    machines = [dataclasses.replace(m, alias=None) for m in real.machines]
    return dataclasses.replace(
        real,
        version=(7, 2, 50),
        machines=machines,
        flags=real.flags | {"machine.hpet"},
    )


def harness_runtime(runtime: RuntimeContext) -> None:
    """What qemuxml2argvtest's mocks provide: fds for chardev sockets/files, a DRM render node, no host CPU."""
    counter = iter(range(1750, 1850))
    runtime.open_fd = lambda _req: next(counter)
    runtime.render_node = "/dev/dri/foo"
    runtime.host_cpu = None  # the harness fakes its host CPU; the real host's must not decide
    runtime.host_tsc = None


def harness_is_cdrom(path: str) -> bool:
    """The harness's mocked virFileIsCDROM: device nodes named /dev/cdrom* are CD-ROM drives."""
    return path.startswith("/dev/cdrom")


def parse_args_file(text: str) -> list[str]:
    """Words of an .args file in either layout (one per line with `\\`, or one line)."""
    return shlex.split(text.replace("\\\n", " "))


def normalize(words: list[str]) -> list[str]:
    """Drop the environment prefix and blank out fd numbers (see the module docstring)."""
    i = 0
    while i < len(words) and _ENV_WORD.match(words[i]):
        i += 1
    out: list[str] = []
    for w in words[i:]:
        for pat, rep in _FD_PATTERNS:
            w = pat.sub(rep, w)
        out.append(w)
    return out


def _expected_error(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line.removeprefix("error: ").strip()


def _first_diff(ours: list[str], theirs: list[str]) -> str:
    for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        if a != b:
            return f"word {i}: got {a[:90]!r} want {b[:90]!r}"
    if len(ours) != len(theirs):
        i = min(len(ours), len(theirs))
        extra = ours[i] if len(ours) > i else theirs[i]
        who = "extra" if len(ours) > i else "missing"
        return f"word {i}: {who} {extra[:90]!r}"
    return "same"


def score_case(
    name: str,
    xml: str,
    expected_args: str | None,
    expected_err: str | None,
    caps: QemuCaps,
    config: QemuDriverConfig,
    monitor_fd: int | None,
    harness: bool = False,
) -> Outcome:
    """Build one case and compare with its expected output."""
    from virtstack.virt.drivers.qemu.command import xml_to_native

    try:
        if harness:
            cmd = xml_to_native(
                xml,
                caps,
                config,
                monitor_fd=monitor_fd,
                pretend_ethernet=False,
                cdrom_check=harness_is_cdrom,
                prepare=harness_runtime,
            )
        else:
            cmd = xml_to_native(xml, caps, config, monitor_fd=monitor_fd)
    except VirtError as e:
        if expected_err is None:
            return Outcome(name, False, f"rejected: {e.message}")
        same = e.message == _expected_error(expected_err)
        return Outcome(name, True, f"rejected msg={'same' if same else 'differs'}")
    except Exception as e:  # a traceback is a bug, scored and shown, never fatal for the run
        tb = traceback.extract_tb(e.__traceback__)[-1]
        return Outcome(name, False, f"crash {type(e).__name__}: {e} at {Path(tb.filename).name}:{tb.lineno}")
    if expected_args is None:
        return Outcome(name, False, "accepted but libvirt rejects: " + _expected_error(expected_err or ""))
    ours = normalize(cmd.argv)
    theirs = normalize(parse_args_file(expected_args))
    if ours == theirs:
        return Outcome(name, True, "")
    return Outcome(name, False, _first_diff(ours, theirs))


_CONF_FIELDS = {f.name for f in dataclasses.fields(QemuDriverConfig)}
_OVERRIDE_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)")


def harness_config(overrides: str) -> QemuDriverConfig:
    """The harness config plus the `key=value` overrides of a HARNESS.tsv row that name config fields.

    `QEMU_AUDIO_DRV=x` in the environment becomes `host_audio_driver`; unknown keys are ignored (the
    case then usually fails, which is the honest outcome).
    """
    config = QemuDriverConfig.harness()
    changes: dict[str, object] = {}
    for key, value in _OVERRIDE_TOKEN.findall(overrides):
        if key == "QEMU_AUDIO_DRV":
            changes["host_audio_driver"] = value
        elif key in _CONF_FIELDS:
            current = getattr(config, key)
            if isinstance(current, bool):
                changes[key] = value in ("1", "yes", "true")
            elif isinstance(current, int):
                changes[key] = int(value)
            else:
                changes[key] = value
    return config.with_overrides(**changes) if changes else config


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def run_local(folder: Path, names: list[str], caps: QemuCaps) -> list[Outcome]:
    local = folder / "libvirt-local"
    config = QemuDriverConfig.system()
    out = []
    for name in names:
        xml = (folder / f"{name}.xml").read_text()
        args = _read(local / f"{name}.args")
        err = _read(local / f"{name}.err")
        if args is None and err is None:
            continue
        out.append(score_case(name, xml, args, err, caps, config, None))
    return out


def _harness_rows(folder: Path) -> dict[str, dict[str, str]]:
    path = folder / "HARNESS.tsv"
    if not path.exists():
        return {}
    with path.open(newline="") as f:
        return {row["name"]: row for row in csv.DictReader(f, delimiter="\t")}


def run_upstream(folder: Path, names: list[str], caps: QemuCaps) -> list[tuple[str, Outcome]]:
    rows = _harness_rows(folder)
    fixture = latest_caps(caps)
    out = []
    for name in names:
        xml = (folder / f"{name}.xml").read_text()
        args = _read(folder / f"{name}.args")
        err = _read(folder / f"{name}.err")
        if args is None and err is None:
            continue
        row = rows.get(name, {})
        overrides = row.get("harness_overrides", "") or ""
        group = f"{row.get('caps_dialect', 'latest')}/{'overrides' if overrides or row.get('extra_args') else 'plain'}"
        config = harness_config(overrides)
        out.append(
            (group, score_case(name, xml, args, err, fixture, config, HARNESS_MONITOR_FD, harness=True))
        )
    return out


def main(folder: Path) -> int:
    """Print one PASS/FAIL line per case per scoreboard, then totals; 0 unless the folder is unusable."""
    names = sorted(p.name[: -len(".xml")] for p in folder.glob("*.xml"))
    if not names:
        print(f"no NAME.xml files in {folder}", file=sys.stderr)
        return 2
    caps = probe_qemu_caps()
    local = run_local(folder, names, caps) if (folder / "libvirt-local").is_dir() else []
    for o in local:
        print(f"{'PASS' if o.passed else 'FAIL'} local {o.name}{' ' + o.note if o.note else ''}")
    upstream = run_upstream(folder, names, caps)
    for group, o in upstream:
        print(f"{'PASS' if o.passed else 'FAIL'} upstream {group} {o.name}{' ' + o.note if o.note else ''}")
    if local:
        print(f"local: {sum(o.passed for o in local)}/{len(local)} passed")
    totals: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    for group, o in upstream:
        for key in (group, group.split("/")[0]):
            totals[key] += 1
            passed[key] += o.passed
    for key in sorted(totals, key=lambda k: ("/" in k, k)):
        print(f"upstream {key}: {passed[key]}/{totals[key]} passed")
    return 0
