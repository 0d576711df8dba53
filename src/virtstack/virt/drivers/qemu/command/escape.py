"""Quoting for the three syntaxes an argv passes through: QEMU option values, JSON, and shell display."""

from __future__ import annotations

import json
from typing import Any

# virBufferEscapeShell quotes a word only when it holds one of these.
_SHELL_META = set("\r\t\n !\"#$&'()*;<>?[\\]^`{|}~")


def qemu_opt(value: str) -> str:
    """Escape a value inside a QEMU `key=value,key=value` option: a ',' is written twice."""
    return value.replace(",", ",,")


def json_arg(props: dict[str, Any]) -> str:
    """A JSON-syntax option (`-device '{...}'`): compact, in insertion order, like libvirt's."""
    return json.dumps(props, separators=(",", ":"), ensure_ascii=False)


def shell_word(word: str) -> str:
    """One argv word as libvirt prints it: bare when safe, else single-quoted with ' as '\\''."""
    if word and not any(c in _SHELL_META for c in word):
        return word
    return "'" + word.replace("'", "'\\''") + "'"


def shell_env(key: str, value: str) -> str:
    """An environment assignment as libvirt prints it: the value quoted, the name and '=' bare."""
    return f"{key}={shell_word(value)}"
