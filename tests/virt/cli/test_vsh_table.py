"""vshTable layout against tables captured from virsh 9.0 (shared/libvirt/reference)."""

from __future__ import annotations

import pytest

from virtstack.virt.cli.table import Table

DOMAINS = """\
 Id   Name   State
-----------------------
 1    test   running
 -    vm2    shut off
"""

POOLS = """\
 Name           State     Autostart   Persistent   Capacity     Allocation   Available
-----------------------------------------------------------------------------------------
 default-pool   running   no          yes          100.00 GiB   0.00 B       100.00 GiB
"""

EMPTY = """\
 Id   Name   State
--------------------
"""

TITLE = " Id   Name   State     Title\n------------------------------\n 1    test   running   \n"


def test_domain_list() -> None:
    t = Table(["Id", "Name", "State"])
    t.add("1", "test", "running")
    t.add("-", "vm2", "shut off")
    assert t.render() == DOMAINS


def test_wide_table() -> None:
    t = Table(["Name", "State", "Autostart", "Persistent", "Capacity", "Allocation", "Available"])
    t.add("default-pool", "running", "no", "yes", "100.00 GiB", "0.00 B", "100.00 GiB")
    assert t.render() == POOLS


def test_empty_table_keeps_header_widths() -> None:
    assert Table(["Id", "Name", "State"]).render() == EMPTY


def test_empty_last_cell_keeps_padding() -> None:
    t = Table(["Id", "Name", "State", "Title"])
    t.add("1", "test", "running", "")
    assert t.render() == TITLE


def test_quiet_drops_header_and_its_width() -> None:
    t = Table(["Id", "Name", "State"])
    t.add("1", "test", "running")
    assert t.render(header=False) == " 1   test   running\n"


def test_row_must_fit_columns() -> None:
    with pytest.raises(ValueError):
        Table(["a", "b"]).add("only-one")
