"""Host and hypervisor commands (virsh-host.c): version, uri, hostname, nodeinfo, capabilities, domxml-to-native."""

from __future__ import annotations

from virtstack.virt.cli.shell import Command, Ctl, Opt, OptKind, ParsedCommand, read_file
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError

#: the libvirt API level vsh implements; virsh prints its own library version in the same lines
LIBRARY_VERSION = 9_000_000


def version_string(v: int) -> str:
    """libvirt's integer version (major * 1e6 + minor * 1e3 + micro) as `major.minor.micro`."""
    return f"{v // 1_000_000}.{v // 1000 % 1000}.{v % 1000}"


def cmd_version(ctl: Ctl, cmd: ParsedCommand) -> None:
    conn = ctl.conn
    lib = version_string(LIBRARY_VERSION)
    ctl.print(f"Compiled against library: libvirt {lib}\n")
    ctl.print(f"Using library: libvirt {lib}\n")
    try:
        hv_type = conn.get_type()
    except VirtError as exc:
        raise ctl.fail("failed to get hypervisor type", exc) from None
    ctl.print(f"Using API: {hv_type} {lib}\n")
    try:
        hv = conn.get_version()
    except VirtError as exc:
        raise ctl.fail("failed to get the hypervisor version", exc) from None
    if hv == 0:
        ctl.print(f"Cannot extract running {hv_type} hypervisor version\n")
    else:
        ctl.print(f"Running hypervisor: {hv_type} {version_string(hv)}\n")
    if cmd.flag("daemon"):
        try:
            daemon = conn.get_lib_version()
        except VirtError as exc:
            raise ctl.fail("failed to get the daemon version", exc) from None
        ctl.print(f"Running against daemon: {version_string(daemon)}\n")


def cmd_uri(ctl: Ctl, cmd: ParsedCommand) -> None:
    ctl.print(f"{ctl.conn.get_uri()}\n")


def cmd_hostname(ctl: Ctl, cmd: ParsedCommand) -> None:
    try:
        hostname = ctl.conn.get_hostname()
    except VirtError as exc:
        raise ctl.fail("failed to get hostname", exc) from None
    ctl.print(f"{hostname}\n")


def cmd_nodeinfo(ctl: Ctl, cmd: ParsedCommand) -> None:
    try:
        info = ctl.conn.node_get_info()
    except VirtError as exc:
        raise ctl.fail("failed to get node information", exc) from None
    for label, value in (
        ("CPU model:", info.model),
        ("CPU(s):", info.cpus),
        ("CPU frequency:", f"{info.mhz} MHz"),
        ("CPU socket(s):", info.sockets),
        ("Core(s) per socket:", info.cores),
        ("Thread(s) per core:", info.threads),
        ("NUMA cell(s):", info.nodes),
        ("Memory size:", f"{info.memory_kib} KiB"),
    ):
        ctl.print(f"{label:<20} {value}\n")


def cmd_capabilities(ctl: Ctl, cmd: ParsedCommand) -> None:
    try:
        caps = ctl.conn.get_capabilities()
    except VirtError as exc:
        raise ctl.fail("failed to get capabilities", exc) from None
    ctl.print(f"{caps}\n")


def local_xml_to_native(native_format: str, xml: str) -> str:
    """domxml-to-native without a daemon: the QEMU command builder on this machine's QEMU."""
    if native_format != "qemu-argv":
        raise VirtError(ErrorCode.INVALID_ARG, f"unsupported config type {native_format}", ErrorDomain.QEMU)
    # imported here: the command builder and XML models double vsh's start-up for every other command
    from virtstack.virt.drivers.qemu.capabilities import probe_qemu_caps
    from virtstack.virt.drivers.qemu.command import xml_to_native
    from virtstack.virt.drivers.qemu.config import QemuDriverConfig

    try:
        xml.encode("utf-8")
    except UnicodeError:  # a file with stray bytes (read_file keeps them as surrogate escapes)
        raise VirtError(ErrorCode.XML_ERROR, "document is not valid UTF-8", ErrorDomain.XML) from None
    native = xml_to_native(xml, probe_qemu_caps(), QemuDriverConfig())
    return native.to_shell_line()


def cmd_domxml_to_native(ctl: Ctl, cmd: ParsedCommand) -> None:
    native_format = cmd.required("format")
    path, domain = cmd.string("xml"), cmd.string("domain")
    if path is not None and domain is not None:
        raise ctl.fail("Options --xml and --domain are mutually exclusive")
    if path is None and domain is None:
        raise ctl.fail("Either --xml or --domain must be specified")
    if ctl.local:
        if path is None:
            raise ctl.fail("--domain needs a connection (vsh runs domxml-to-native locally without -c)")
        xml = read_file(ctl, path)
        try:
            native = local_xml_to_native(native_format, xml)
        except VirtError as exc:
            raise ctl.fail(exc.message) from None
        ctl.print(native)
        return
    if domain is not None:
        try:
            xml = ctl.domain(cmd, "domain").xml_desc()
        except VirtError as exc:
            raise ctl.fail(exc.message) from None
    else:
        assert path is not None
        xml = read_file(ctl, path)
    try:
        native = ctl.conn.domain_xml_to_native(native_format, xml)
    except VirtError as exc:
        raise ctl.fail(exc.message) from None
    ctl.print(native)  # as virsh: no newline of its own, the end-of-command blank line ends it


COMMANDS = (
    Command("version", (Opt("daemon"),), cmd_version, "show version"),
    Command("uri", (), cmd_uri, "print the hypervisor canonical URI"),
    Command("hostname", (), cmd_hostname, "print the hypervisor hostname"),
    Command("nodeinfo", (), cmd_nodeinfo, "node information"),
    Command("capabilities", (), cmd_capabilities, "capabilities"),
    Command(
        "domxml-to-native",
        (
            Opt("format", OptKind.DATA, required=True, positional=True, help="target config data type format"),
            Opt("xml", OptKind.STRING, positional=True, help="xml data file to export from"),
            Opt("domain", OptKind.STRING, help="domain name, id or uuid"),
        ),
        cmd_domxml_to_native,
        "Convert domain XML to native config",
        local_ok=True,
    ),
)
