"""Domain monitoring commands (virsh-domain-monitor.c): list, dominfo, domstate."""

from __future__ import annotations

from xml.etree import ElementTree

from virtstack.virt.cli.shell import Command, CommandFailed, Ctl, Opt, OptKind, ParsedCommand
from virtstack.virt.cli.table import Table
from virtstack.virt.client import Domain
from virtstack.virt.drivers.base import DomainState, ListFlags
from virtstack.virt.errors import ErrorCode, VirtError

STATE_WORDS = {
    DomainState.NOSTATE: "no state",
    DomainState.RUNNING: "running",
    DomainState.BLOCKED: "idle",
    DomainState.PAUSED: "paused",
    DomainState.SHUTDOWN: "in shutdown",
    DomainState.SHUTOFF: "shut off",
    DomainState.CRASHED: "crashed",
    DomainState.PMSUSPENDED: "pmsuspended",
}

#: virshDomainStateReasonToString, indexed by reason number per state
REASON_WORDS: dict[int, tuple[str, ...]] = {
    DomainState.NOSTATE: ("unknown",),
    DomainState.RUNNING: ("unknown", "booted", "migrated", "restored", "from snapshot", "unpaused",
                          "migration canceled", "save canceled", "event wakeup", "crashed", "post-copy",
                          "post-copy failed"),
    DomainState.BLOCKED: ("unknown",),
    DomainState.PAUSED: ("unknown", "user", "migrating", "saving", "dumping", "I/O error", "watchdog",
                         "from snapshot", "shutting down", "creating snapshot", "crashed", "starting up",
                         "post-copy", "post-copy failed"),
    DomainState.SHUTDOWN: ("unknown", "user"),
    DomainState.SHUTOFF: ("unknown", "shutdown", "destroyed", "crashed", "migrated", "saved", "failed",
                          "from snapshot", "daemon"),
    DomainState.CRASHED: ("unknown", "panicked"),
    DomainState.PMSUSPENDED: ("unknown",),
}

#: virDomainMetadataType VIR_DOMAIN_METADATA_TITLE
METADATA_TITLE = 1
#: virDomainInfo.maxMem when the domain has no limit (C's UINT_MAX in an unsigned long field)
NO_LIMIT = 0xFFFFFFFF


def state_word(state: int) -> str:
    try:
        return STATE_WORDS[DomainState(state)]
    except ValueError:
        return "no state"


def reason_word(state: int, reason: int) -> str:
    words = REASON_WORDS.get(state, ("unknown",))
    return words[reason] if 0 <= reason < len(words) else "unknown"


def cmd_list(ctl: Ctl, cmd: ParsedCommand) -> None:
    flags = ListFlags.ACTIVE
    if cmd.flag("inactive"):
        flags = ListFlags.INACTIVE
    if cmd.flag("all"):
        flags = ListFlags.ACTIVE | ListFlags.INACTIVE
    for opt, bit in (("persistent", ListFlags.PERSISTENT), ("transient", ListFlags.TRANSIENT),
                     ("autostart", ListFlags.AUTOSTART), ("no-autostart", ListFlags.NO_AUTOSTART),
                     ("state-running", ListFlags.RUNNING), ("state-paused", ListFlags.PAUSED),
                     ("state-shutoff", ListFlags.SHUTOFF), ("state-other", ListFlags.OTHER),
                     ("with-managed-save", ListFlags.MANAGEDSAVE), ("without-managed-save", ListFlags.NO_MANAGEDSAVE),
                     ("with-snapshot", ListFlags.HAS_SNAPSHOT), ("without-snapshot", ListFlags.NO_SNAPSHOT),
                     ("with-checkpoint", 1 << 14), ("without-checkpoint", 1 << 15)):
        if cmd.flag(opt):
            flags |= bit
    try:
        domains = ctl.conn.list_all_domains(int(flags))
    except VirtError as exc:
        raise ctl.fail("Failed to list domains", exc) from None
    active = sorted((d for d in domains if d.id != -1), key=lambda d: d.id)
    inactive = sorted((d for d in domains if d.id == -1), key=lambda d: d.name.lower())
    ordered = active + inactive
    want_name, want_uuid, want_id = cmd.flag("name"), cmd.flag("uuid"), cmd.flag("id")
    if cmd.flag("table"):
        for opt in ("name", "uuid", "id"):
            if cmd.flag(opt):
                raise ctl.fail(f"Options --table and --{opt} are mutually exclusive")
    if want_name or want_uuid or want_id:
        for d in ordered:
            if want_id and not (want_name or want_uuid) and d.id == -1:
                continue
            fields = [d.uuid_string()] if want_uuid else []
            if want_id:
                fields.append("-" if d.id == -1 else str(d.id))
            if want_name:
                fields.append(d.name)
            ctl.print(" ".join(fields) + "\n")
        return
    with_title = cmd.flag("title")
    table = Table(["Id", "Name", "State", *(["Title"] if with_title else [])])
    for d in ordered:
        try:
            state, _reason = d.state()
            word = state_word(state)
            if cmd.flag("managed-save") and state == DomainState.SHUTOFF and d.has_managed_save_image():
                word = "saved"
        except VirtError:
            word = "no state"
        row = ["-" if d.id == -1 else str(d.id), d.name, word]
        table.add(*row, *([_title(d)] if with_title else []))
    ctl.print(table.render(header=not ctl.quiet))


def _title(dom: Domain) -> str:
    """The domain's <title>, "" when it has none (virshGetDomainDescription).

    Like virsh, falls back to reading the XML when the daemon cannot answer the metadata call.
    """
    try:
        return dom.metadata(METADATA_TITLE)
    except VirtError as exc:
        if exc.code == ErrorCode.NO_DOMAIN_METADATA:
            return ""
    try:
        root = ElementTree.fromstring(dom.xml_desc())
    except (VirtError, ElementTree.ParseError):
        return ""
    return root.findtext("title") or ""


def _info_line(ctl: Ctl, label: str, value: object) -> None:
    ctl.print(f"{label:<15} {value}\n")


def _optional(call: object) -> object:
    """Run a query virsh treats as optional: None when it fails."""
    try:
        return call() if callable(call) else None
    except VirtError:
        return None


def cmd_dominfo(ctl: Ctl, cmd: ParsedCommand) -> None:
    dom = ctl.domain(cmd)
    _info_line(ctl, "Id:", "-" if dom.id == -1 else dom.id)
    _info_line(ctl, "Name:", dom.name)
    _info_line(ctl, "UUID:", dom.uuid_string())
    os_type = _optional(dom.os_type)
    if os_type is not None:
        _info_line(ctl, "OS Type:", os_type)
    ok = True
    try:
        info = dom.info()
    except VirtError as exc:
        ok, failure = False, exc
    else:
        _info_line(ctl, "State:", state_word(info.state))
        _info_line(ctl, "CPU(s):", info.nr_virt_cpu)
        if info.cpu_time_ns:
            _info_line(ctl, "CPU time:", f"{info.cpu_time_ns / 1e9:.1f}s")
        _info_line(ctl, "Max memory:", "no limit" if info.max_mem_kib == NO_LIMIT else f"{info.max_mem_kib} KiB")
        _info_line(ctl, "Used memory:", f"{info.memory_kib} KiB")
    persistent = _optional(dom.is_persistent)
    _info_line(ctl, "Persistent:", "unknown" if persistent is None else ("yes" if persistent else "no"))
    autostart = _optional(dom.autostart)
    if autostart is not None:
        _info_line(ctl, "Autostart:", "enable" if autostart else "disable")
    managed = _optional(dom.has_managed_save_image)
    _info_line(ctl, "Managed save:", "unknown" if managed is None else ("yes" if managed else "no"))
    _security(ctl, dom)
    messages = _optional(dom.messages)
    if isinstance(messages, list):
        for n, msg in enumerate(messages):
            _info_line(ctl, "Messages:" if n == 0 else "", msg)
    if not ok:
        raise ctl.fail(failure.message)


def _security(ctl: Ctl, dom: Domain) -> None:
    try:
        model = ctl.conn.node_get_security_model()
    except VirtError as exc:
        if exc.code == ErrorCode.NO_SUPPORT:
            return
        raise ctl.fail(exc.message) from None
    if not model.model:
        return
    _info_line(ctl, "Security model:", model.model)
    _info_line(ctl, "Security DOI:", model.doi)
    try:
        label = dom.security_label()
    except VirtError as exc:
        raise ctl.fail(exc.message) from None
    if label.label:
        _info_line(ctl, "Security label:", f"{label.label} ({'enforcing' if label.enforcing else 'permissive'})")


def cmd_domstate(ctl: Ctl, cmd: ParsedCommand) -> None:
    dom = ctl.domain(cmd)
    try:
        state, reason = dom.state()
    except VirtError as exc:
        raise ctl.fail(exc.message) from None
    if cmd.flag("reason"):
        ctl.print(f"{state_word(state)} ({reason_word(state, reason)})\n")
    else:
        ctl.print(f"{state_word(state)}\n")


DOMAIN = Opt("domain", OptKind.STRING, required=True, positional=True, help="domain name, id or uuid")

LIST_OPTS = tuple(
    Opt(name) for name in ("inactive", "all", "transient", "persistent", "with-snapshot", "without-snapshot",
                           "with-checkpoint", "without-checkpoint", "state-running", "state-paused",
                           "state-shutoff", "state-other", "autostart", "no-autostart", "with-managed-save",
                           "without-managed-save", "uuid", "name", "id", "table", "managed-save", "title")
)

COMMANDS = (
    Command("list", LIST_OPTS, cmd_list, "list domains"),
    Command("dominfo", (DOMAIN,), cmd_dominfo, "domain information"),
    Command("domstate", (DOMAIN, Opt("reason")), cmd_domstate, "domain state"),
)

__all__ = ["COMMANDS", "DOMAIN", "CommandFailed", "reason_word", "state_word"]
