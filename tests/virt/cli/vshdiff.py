"""Run the real virsh and our vsh on the same command line and compare stdout, stderr and exit status."""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

VIRSH = shutil.which("virsh") or "/usr/bin/virsh"
#: vsh as its console script would run it, with this interpreter
VSH = [sys.executable, "-m", "virtstack.virt.cli"]
#: the test driver reports wall-clock time as a domain's CPU time: the one value that cannot match
_CPU_TIME = re.compile(r"^(CPU time: +)\d+\.\ds$", re.MULTILINE)


@dataclass(frozen=True)
class Result:
    status: int
    stdout: str
    stderr: str

    def normalized(self) -> Result:
        return Result(self.status, _CPU_TIME.sub(r"\1<cpu-time>", self.stdout), self.stderr)


def run(program: list[str], args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
    proc = subprocess.run(
        # surrogateescape both ways: arguments and output may hold bytes that are not UTF-8
        [*program, *args], capture_output=True, text=True, errors="surrogateescape", timeout=60, cwd=cwd,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def virsh(args: list[str], env: dict[str, str] | None = None) -> Result:
    return run([VIRSH], args, env=env)


def vsh(args: list[str], env: dict[str, str] | None = None) -> Result:
    return run(VSH, args, env=env)


def explain(expected: Result, got: Result) -> str:
    """A readable diff of two results (for assertion messages)."""
    parts = []
    if expected.status != got.status:
        parts.append(f"exit status: virsh {expected.status}, vsh {got.status}")
    for name in ("stdout", "stderr"):
        a, b = getattr(expected, name), getattr(got, name)
        if a != b:
            diff = difflib.unified_diff(a.splitlines(True), b.splitlines(True), "virsh", "vsh")
            parts.append(f"{name}:\n" + "".join(diff))
    return "\n".join(parts)


def assert_same(args: list[str], uris: tuple[str, str] | None = None, options: tuple[str, ...] = ()) -> Result:
    """virsh and vsh agree on `args` (with `-c` each from `uris`); returns virsh's (normalized) result."""
    virsh_args = [*options, "-c", uris[0], *args] if uris else [*options, *args]
    vsh_args = [*options, "-c", uris[1], *args] if uris else [*options, *args]
    expected = virsh(virsh_args).normalized()
    got = vsh(vsh_args).normalized()
    assert expected == got, explain(expected, got)
    return expected
