"""Fixtures for the XML tests: the sample folder, the domain schema and the real QEMU's capabilities."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

SHARED = Path(__file__).resolve().parents[3].parent / "shared"
SAMPLES = SHARED / "libvirt" / "samples" / "domain-xml2xml"
SCHEMAS = SHARED / "libvirt" / "schemas"


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"libvirt sample data {SAMPLES} is not beside the checkout")
    return SAMPLES


@pytest.fixture(scope="session")
def domain_schema() -> etree.RelaxNG:
    path = SCHEMAS / "domain.rng"
    if not path.is_file():
        pytest.skip(f"libvirt schema {path} is not beside the checkout")
    return etree.RelaxNG(etree.parse(str(path)))


@pytest.fixture(scope="session")
def capability_schema() -> etree.RelaxNG:
    path = SCHEMAS / "capability.rng"
    if not path.is_file():
        pytest.skip(f"libvirt schema {path} is not beside the checkout")
    return etree.RelaxNG(etree.parse(str(path)))


@pytest.fixture(scope="session")
def qemu_caps():  # type: ignore[no-untyped-def]
    from virtstack.virt.drivers.qemu.capabilities import DEFAULT_BINARY, probe_qemu_caps

    if not Path(DEFAULT_BINARY).exists():
        pytest.skip(f"{DEFAULT_BINARY} is not installed")
    return probe_qemu_caps()
