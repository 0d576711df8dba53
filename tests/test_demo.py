"""The demo's run directory must be ours alone: its configs become guests started as this user."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from virtstack.demo import run_dir


def test_creates_a_private_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "demo"
    monkeypatch.setenv("VIRTSTACK_RUN_DIR", str(target))
    assert run_dir() == target
    assert target.stat().st_mode & 0o777 == 0o700


def test_refuses_a_directory_open_to_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "demo"
    target.mkdir()
    os.chmod(target, 0o777)
    monkeypatch.setenv("VIRTSTACK_RUN_DIR", str(target))
    with pytest.raises(RuntimeError, match="mode 0700"):
        run_dir()


def test_refuses_a_symlink(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir(mode=0o700)
    link = tmp_path / "demo"
    link.symlink_to(real)
    monkeypatch.setenv("VIRTSTACK_RUN_DIR", str(link))
    with pytest.raises(RuntimeError, match="not a plain directory"):
        run_dir()
