"""The explicit vsh command table: every command, from its family module, in one place."""

from __future__ import annotations

from virtstack.virt.cli import console, domain, host, monitor
from virtstack.virt.cli.shell import Command

FAMILIES: tuple[tuple[Command, ...], ...] = (
    host.COMMANDS,
    monitor.COMMANDS,
    domain.COMMANDS,
    console.COMMANDS,
)

COMMANDS: dict[str, Command] = {c.name: c for family in FAMILIES for c in family}
