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
