"""Atomic writes: the target always holds a complete version, and no temp file is left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from virtstack.common.atomic import remove_if_exists, write_atomic


def test_replaces_content_with_the_requested_mode(tmp_path: Path) -> None:
    target = tmp_path / "dom.xml"
    write_atomic(target, "<old/>")
    write_atomic(target, b"<new/>", mode=0o640)
    assert target.read_bytes() == b"<new/>"
    assert target.stat().st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["dom.xml"]


def test_a_failed_write_keeps_the_old_version_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "dom.xml"
    write_atomic(target, "<old/>")
    with pytest.raises(TypeError):
        write_atomic(target, 12345)  # type: ignore[arg-type]
    assert target.read_text() == "<old/>"
    assert os.listdir(tmp_path) == ["dom.xml"]


def test_remove_if_exists(tmp_path: Path) -> None:
    target = tmp_path / "x"
    target.write_text("x")
    assert remove_if_exists(target) is True
    assert remove_if_exists(target) is False
