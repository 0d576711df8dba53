"""Shared fixtures: the built test guest, and skips that say why a real part is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from virtstack.testing.guest import Guest, build_guest

QEMU = "/usr/bin/qemu-system-x86_64"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def guest() -> Guest:
    if not shutil.which(QEMU):
        pytest.skip(f"{QEMU} is not installed (make setup installs it)")
    return build_guest()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"reference data {SHARED} is not beside the checkout")
    return SHARED
