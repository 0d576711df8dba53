"""The interleaving runner: rotation, skipping what a target lacks, and noting what fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.common import Options, Results
from bench.target import Target, Unsupported

from bench import compare
from virtstack.testing.guest import Guest


class Recorder(Target):
    """A target whose figures are constants; it logs the order of calls into a shared list."""

    def __init__(self, name: str, log: list[str], tmp: Path, *, fail_define: bool = False) -> None:
        super().__init__(Guest(tmp / "k", tmp / "i", ""), "qemu", tmp)
        self.name = name
        self.log = log
        self.fail_define = fail_define

    def define_undefine(self) -> float:
        self.log.append(self.name)
        if self.fail_define:
            raise RuntimeError("define broke")
        return 0.001


class BootOnly(Target):
    name = "boot-only"

    def boot(self, index: int, timeout: float) -> tuple[float, float]:
        return 0.1, 2.0 + index


def test_calls_are_interleaved_and_rotated(tmp_path: Path) -> None:
    log: list[str] = []
    results = Results()
    targets: list[Target] = [Recorder("a", log, tmp_path), Recorder("b", log, tmp_path)]
    compare.interleave(results, targets, "define+undefine", lambda t: t.define_undefine(), 3)
    assert log == ["a", "b", "b", "a", "a", "b"]
    assert results.figures["a"]["define+undefine"].samples == (0.001, 0.001, 0.001)


def test_unsupported_is_silent_and_failure_is_noted(tmp_path: Path) -> None:
    log: list[str] = []
    results = Results()
    targets: list[Target] = [Recorder("ok", log, tmp_path), Recorder("broken", log, tmp_path, fail_define=True),
                             BootOnly(Guest(tmp_path / "k", tmp_path / "i", ""), "qemu", tmp_path)]  # fmt: skip
    compare.run(results, targets, Options(api_iterations=2, domains=3, boots=2, workdir=tmp_path))
    assert results.figures["ok"]["define+undefine"].samples == (0.001, 0.001)
    assert "broken" not in results.figures
    assert results.notes["broken"] == ["define+undefine failed: RuntimeError: define broke"]
    assert "boot-only" not in results.notes
    assert results.figures["boot-only"]["start-to-marker"].samples == (2.0, 3.0)
    assert "ok" not in results.notes  # lookup, many domains, boot: Unsupported, skipped without a word


def test_unsupported_is_an_exception_the_base_raises(tmp_path: Path) -> None:
    target = Target(Guest(tmp_path / "k", tmp_path / "i", ""), "qemu", tmp_path)
    for call in (target.define_undefine, target.lookup_xml, target.list_all):
        with pytest.raises(Unsupported):
            call()
