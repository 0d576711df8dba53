"""Domain management commands (virsh-domain.c): define, create, start, lifecycle, undefine, dumpxml, autostart."""

from __future__ import annotations

from collections.abc import Callable

from virtstack.virt.cli.monitor import DOMAIN
from virtstack.virt.cli.shell import Command, Ctl, Opt, OptKind, ParsedCommand, read_file
from virtstack.virt.client import Domain
from virtstack.virt.drivers.base import StartFlags, XmlFlags
from virtstack.virt.errors import ErrorCode, VirtError

FILE = Opt("file", OptKind.STRING, required=True, positional=True, help="file containing an XML domain description")

#: virDomainShutdownFlagValues / virDomainRebootFlagValues, by virsh's --mode words
MODES = {"acpi": 1, "agent": 2, "initctl": 4, "signal": 8, "paravirt": 16}
DESTROY_GRACEFUL = 1
DEFINE_VALIDATE = 1
UNDEFINE_FLAGS = {"managed-save": 1, "snapshots-metadata": 2, "nvram": 4, "keep-nvram": 8,
                  "checkpoints-metadata": 16, "tpm": 32, "keep-tpm": 64}


def _start_flags(cmd: ParsedCommand) -> int:
    flags = 0
    for opt, bit in (("paused", StartFlags.PAUSED), ("autodestroy", StartFlags.AUTODESTROY),
                     ("bypass-cache", StartFlags.BYPASS_CACHE), ("force-boot", StartFlags.FORCE_BOOT),
                     ("validate", StartFlags.VALIDATE), ("reset-nvram", 32)):
        if cmd.flag(opt):
            flags |= int(bit)
    return flags


def _mode_flags(ctl: Ctl, cmd: ParsedCommand) -> int:
    flags = 0
    mode = cmd.string("mode")
    for word in (mode.split(",") if mode else []):
        if word not in MODES:
            raise ctl.fail(f"Unknown mode {word} value, expecting 'acpi', 'agent', 'initctl', 'signal' or 'paravirt'")
        flags |= MODES[word]
    return flags


def cmd_define(ctl: Ctl, cmd: ParsedCommand) -> None:
    path = cmd.required("file")
    xml = read_file(ctl, path)
    try:
        dom = ctl.conn.define_xml(xml, DEFINE_VALIDATE if cmd.flag("validate") else 0)
    except VirtError as exc:
        raise ctl.fail(f"Failed to define domain from {path}", exc) from None
    ctl.print_extra(f"Domain '{dom.name}' defined from {path}\n")


def cmd_create(ctl: Ctl, cmd: ParsedCommand) -> None:
    path = cmd.required("file")
    xml = read_file(ctl, path)
    try:
        dom = ctl.conn.create_xml(xml, _start_flags(cmd))
    except VirtError as exc:
        raise ctl.fail(f"Failed to create domain from {path}", exc) from None
    ctl.print_extra(f"Domain '{dom.name}' created from {path}\n")


def _act(ctl: Ctl, dom: Domain, verb: str, action: Callable[[], object], done: str) -> None:
    """One lifecycle call the way virsh reports it: `Failed to VERB domain 'X'` + the error, or DONE."""
    try:
        action()
    except VirtError as exc:
        raise ctl.fail(f"Failed to {verb} domain '{dom.name}'", exc) from None
    ctl.print_extra(f"Domain '{dom.name}' {done}\n")


def cmd_start(ctl: Ctl, cmd: ParsedCommand) -> None:
    dom = ctl.domain(cmd, by_id=False)
    if dom.id != -1:
        raise ctl.fail("Domain is already active")
    _act(ctl, dom, "start", lambda: dom.create(_start_flags(cmd)), "started")


def cmd_suspend(ctl: Ctl, cmd: ParsedCommand) -> None:
    dom = ctl.domain(cmd)
    _act(ctl, dom, "suspend", dom.suspend, "suspended")


def cmd_resume(ctl: Ctl, cmd: ParsedCommand) -> None:
    dom = ctl.domain(cmd)
    _act(ctl, dom, "resume", dom.resume, "resumed")


def cmd_shutdown(ctl: Ctl, cmd: ParsedCommand) -> None:
    flags = _mode_flags(ctl, cmd)
    dom = ctl.domain(cmd)
    _act(ctl, dom, "shutdown", lambda: dom.shutdown(flags), "is being shutdown")


def cmd_reboot(ctl: Ctl, cmd: ParsedCommand) -> None:
    flags = _mode_flags(ctl, cmd)
    dom = ctl.domain(cmd)
    _act(ctl, dom, "reboot", lambda: dom.reboot(flags), "is being rebooted")


def cmd_destroy(ctl: Ctl, cmd: ParsedCommand) -> None:
    dom = ctl.domain(cmd)
    _act(ctl, dom, "destroy", lambda: dom.destroy(DESTROY_GRACEFUL if cmd.flag("graceful") else 0), "destroyed")


def cmd_undefine(ctl: Ctl, cmd: ParsedCommand) -> None:
    dom = ctl.domain(cmd)
    flags = 0
    for opt, bit in UNDEFINE_FLAGS.items():
        if cmd.flag(opt):
            flags |= bit
    try:
        # virsh asks these first (to choose flags); their failures are not fatal
        dom.is_active()
        dom.has_managed_save_image()
    except VirtError:
        pass
    try:
        try:
            dom.undefine(flags)
        except VirtError as exc:
            # virsh falls back to the old call when the daemon lacks the flags variant
            if flags or exc.code != ErrorCode.NO_SUPPORT:
                raise
            dom.undefine()
    except VirtError as exc:
        raise ctl.fail(f"Failed to undefine domain '{dom.name}'", exc) from None
    ctl.print_extra(f"Domain '{dom.name}' has been undefined\n")


def cmd_dumpxml(ctl: Ctl, cmd: ParsedCommand) -> None:
    dom = ctl.domain(cmd)
    flags = 0
    for opt, bit in (("inactive", XmlFlags.INACTIVE), ("security-info", XmlFlags.SECURE),
                     ("update-cpu", XmlFlags.UPDATE_CPU), ("migratable", XmlFlags.MIGRATABLE)):
        if cmd.flag(opt):
            flags |= int(bit)
    try:
        xml = dom.xml_desc(flags)
    except VirtError as exc:
        raise ctl.fail(exc.message) from None
    ctl.print(xml if xml.endswith("\n") else xml + "\n")


def cmd_autostart(ctl: Ctl, cmd: ParsedCommand) -> None:
    dom = ctl.domain(cmd)
    enable = not cmd.flag("disable")
    try:
        dom.set_autostart(enable)
    except VirtError as exc:
        verb = "mark" if enable else "unmark"
        raise ctl.fail(f"Failed to {verb} domain '{dom.name}' as autostarted", exc) from None
    ctl.print_extra(f"Domain '{dom.name}' {'marked' if enable else 'unmarked'} as autostarted\n")


START_OPTS = (Opt("console"), Opt("paused"), Opt("autodestroy"), Opt("bypass-cache"), Opt("force-boot"),
              Opt("reset-nvram"))
MODE = Opt("mode", OptKind.STRING, help="shutdown/reboot mode: acpi|agent|initctl|signal|paravirt")

COMMANDS = (
    Command("define", (FILE, Opt("validate")), cmd_define, "define (but don't start) a domain from an XML file"),
    Command("create", (FILE, Opt("paused"), Opt("autodestroy"), Opt("validate")), cmd_create,
            "create a domain from an XML file"),
    Command("start", (DOMAIN, *START_OPTS[1:]), cmd_start, "start a (previously defined) inactive domain"),
    Command("suspend", (DOMAIN,), cmd_suspend, "suspend a domain"),
    Command("resume", (DOMAIN,), cmd_resume, "resume a domain"),
    Command("shutdown", (DOMAIN, MODE), cmd_shutdown, "gracefully shutdown a domain"),
    Command("reboot", (DOMAIN, MODE), cmd_reboot, "reboot a domain"),
    Command("destroy", (DOMAIN, Opt("graceful")), cmd_destroy, "destroy (stop) a domain"),
    Command("undefine", (DOMAIN, *(Opt(o) for o in UNDEFINE_FLAGS)), cmd_undefine, "undefine a domain"),
    Command("dumpxml", (DOMAIN, Opt("inactive"), Opt("security-info"), Opt("update-cpu"), Opt("migratable")),
            cmd_dumpxml, "domain information in XML"),
    Command("autostart", (DOMAIN, Opt("disable")), cmd_autostart, "autostart a domain"),
)
