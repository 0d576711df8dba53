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


def test_a_temp_name_someone_holds_is_skipped_not_followed(tmp_path: Path) -> None:
    """O_EXCL: a file or symlink already at the temp name (a stale one, a planted one) is left alone."""
    from virtstack.common import atomic

    n = next(atomic._counter)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    squatters = [tmp_path / f".dom.xml.{os.getpid()}.{n + 1}.tmp", tmp_path / f".dom.xml.{os.getpid()}.{n + 2}.tmp"]
    squatters[0].write_text("stale")
    squatters[1].symlink_to(victim)
    write_atomic(tmp_path / "dom.xml", "<new/>")
    assert (tmp_path / "dom.xml").read_text() == "<new/>"
    assert squatters[0].read_text() == "stale"
    assert victim.read_text() == "keep"
    assert sorted(os.listdir(tmp_path)) == sorted(["dom.xml", "victim", squatters[0].name, squatters[1].name])
