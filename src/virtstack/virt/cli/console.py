"""`vsh console`: the guest's serial console on the terminal in raw mode; Ctrl-] detaches (virsh-console.c)."""

from __future__ import annotations

import os
import select
import sys
import termios
import threading
import tty

from virtstack.virt.cli.monitor import DOMAIN
from virtstack.virt.cli.shell import Command, Ctl, Opt, OptKind, ParsedCommand
from virtstack.virt.client import Console
from virtstack.virt.drivers.base import DomainState
from virtstack.virt.errors import VirtError

ESCAPE = b"\x1d"  # Ctrl-]
CONSOLE_FORCE = 1
CONSOLE_SAFE = 2


def pump(console: Console, in_fd: int, out_fd: int, stop: threading.Event) -> None:
    """Copy guest output to `out_fd` and `in_fd` to the guest until Ctrl-], EOF or the stream ends."""

    def guest_to_terminal() -> None:
        try:
            while not stop.is_set():
                data = console.read()
                if not data:
                    break
                os.write(out_fd, data)
        except (VirtError, OSError):
            pass
        stop.set()

    reader = threading.Thread(target=guest_to_terminal, name="vsh-console", daemon=True)
    reader.start()
    while not stop.is_set():
        ready, _, _ = select.select([in_fd], [], [], 0.2)
        if not ready:
            continue
        data = os.read(in_fd, 1024)
        if not data:
            break
        if ESCAPE in data:
            head = data.split(ESCAPE, 1)[0]
            if head:
                console.write(head)
            break
        console.write(data)
    stop.set()


def cmd_console(ctl: Ctl, cmd: ParsedCommand) -> None:
    dom = ctl.domain(cmd)
    try:
        state, _reason = dom.state()
    except VirtError as exc:
        raise ctl.fail(exc.message) from None
    if state not in (DomainState.RUNNING, DomainState.PAUSED, DomainState.BLOCKED):
        raise ctl.fail("The domain is not running")
    in_fd = sys.stdin.fileno()
    if not os.isatty(in_fd):
        raise ctl.fail("Cannot run interactive console without a controlling TTY")
    flags = (CONSOLE_FORCE if cmd.flag("force") else 0) | (CONSOLE_SAFE if cmd.flag("safe") else 0)
    # virsh prints the banner before it opens the stream, so a refusal shows up under it
    ctl.print_extra(f"Connected to domain '{dom.name}'\n")
    ctl.print_extra("Escape character is ^] (Ctrl + ])\n")
    ctl.out.flush()
    try:
        console = dom.open_console(cmd.string("devname"), flags)
    except VirtError as exc:
        raise ctl.fail(exc.message) from None
    saved = termios.tcgetattr(in_fd)
    try:
        tty.setraw(in_fd)
        pump(console, in_fd, sys.stdout.fileno(), threading.Event())
    finally:
        termios.tcsetattr(in_fd, termios.TCSAFLUSH, saved)
        try:
            console.close()
        except VirtError:
            pass


COMMANDS = (
    Command(
        "console",
        (DOMAIN, Opt("devname", OptKind.STRING, help="character device name"), Opt("force"), Opt("safe")),
        cmd_console,
        "connect to the guest console",
    ),
)
