"""Quoting of option values, JSON arguments and the printed shell line."""

from __future__ import annotations

import shlex

from virtstack.virt.drivers.qemu.command import QemuCommand
from virtstack.virt.drivers.qemu.command.escape import json_arg, qemu_opt, shell_word


def test_qemu_option_commas_are_doubled() -> None:
    assert qemu_opt("a,b,,c") == "a,,b,,,,c"
    assert qemu_opt("plain") == "plain"


def test_json_is_compact_and_keeps_key_order() -> None:
    assert json_arg({"driver": "ide-hd", "bus": "ide.0", "unit": 0, "ro": True, "x": None}) == (
        '{"driver":"ide-hd","bus":"ide.0","unit":0,"ro":true,"x":null}'
    )


def test_shell_words_quoted_only_when_needed() -> None:
    assert shell_word("guest=a,debug-threads=on") == "guest=a,debug-threads=on"
    assert shell_word('{"a":1}') == "'{\"a\":1}'"
    assert shell_word("it's") == "'it'\\''s'"
    assert shell_word("") == "''"
    assert shell_word("[::]:1") == "'[::]:1'"


def test_shell_line_round_trips_through_a_posix_shell_parser() -> None:
    cmd = QemuCommand(
        env={"LC_ALL": "C", "HOME": "/var/lib/x y"},
        argv=[
            "/usr/bin/qemu-system-x86_64",
            "-name",
            "guest=it's,debug-threads=on",
            "-device",
            '{"id":"a b"}',
        ],
    )
    line = cmd.to_shell_line()
    assert line.startswith("LC_ALL=C HOME='/var/lib/x y' /usr/bin/qemu-system-x86_64 ")
    assert shlex.split(line)[2:] == cmd.argv
    assert shlex.split(cmd.to_args_file().replace("\\\n", " "))[2:] == cmd.argv


def _split_qemu_options(word: str) -> list[str]:
    """Split an option string the way QEMU's option parser does: ',' separates, ',,' is a literal comma."""
    parts, current, i = [], "", 0
    while i < len(word):
        if word[i] == ",":
            if word[i + 1 : i + 2] == ",":
                current += ","
                i += 2
                continue
            parts.append(current)
            current = ""
        else:
            current += word[i]
        i += 1
    return [*parts, current]


def test_xml_values_cannot_inject_qemu_options() -> None:
    """A ',' in any user-supplied string must stay inside its value, never start a new option."""
    from virtstack.virt.drivers.qemu.capabilities import probe_qemu_caps
    from virtstack.virt.drivers.qemu.command import xml_to_native
    from virtstack.virt.drivers.qemu.config import QemuDriverConfig

    xml = """<domain type='qemu'>
  <name>inj</name><memory>65536</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <features><acpi/><hyperv mode='custom'><vendor_id state='on' value='ab,evil=1'/></hyperv></features>
  <devices>
    <serial type='tcp'><source mode='connect' host='127.0.0.1,evil=2' service='44,evil=3'/><target port='0'/></serial>
    <channel type='spiceport'><source channel='org.x,evil=4'/><target type='virtio' name='org.x'/></channel>
    <serial type='udp'><source mode='bind' host='127.0.0.1,evil=5' service='45'/>
      <source mode='connect' host='127.0.0.2,evil=6' service='46'/><target port='1'/></serial>
    <graphics type='vnc' port='5901'><listen type='address' address='127.0.0.1,evil=7'/></graphics>
    <graphics type='spice' port='5902'><listen type='address' address='127.0.0.1,evil=8'/></graphics>
  </devices>
</domain>"""
    argv = xml_to_native(xml, probe_qemu_caps(), QemuDriverConfig.system()).argv
    options = [opt for word in argv for opt in _split_qemu_options(word)]
    injected = [opt for opt in options if opt.startswith("evil=")]
    assert injected == [], injected
    assert any("evil=" in word for word in argv)  # the values themselves did reach the command line
