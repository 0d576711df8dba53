"""Shared fixtures: the built test guest, and skips that say why a real part is missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from virtstack.testing.guest import Guest, build_guest

QEMU = "/usr/bin/qemu-system-x86_64"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def pytest_sessionstart(session: pytest.Session) -> None:
    """In CI the reference data must be there: its absence would turn the conformance gates into skips."""
    if os.environ.get("CI") and not SHARED.is_dir():
        raise pytest.UsageError(f"CI run without the reference data: {SHARED} is missing")


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
