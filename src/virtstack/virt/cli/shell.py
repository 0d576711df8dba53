"""vsh's command machinery: option specs, virsh's argument rules, the control object commands print through.

Argument rules follow virsh (tools/vsh.c): `--opt value`, `--opt=value`, bare words fill the command's
positional options in order; its error sentences ("command 'X' requires <domain> option",
"unexpected data 'extra'", ...) are reproduced word for word because scripts match on them. A whole
batch is parsed before anything runs, so a typo in the third command runs none.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TextIO

from virtstack.virt.client import Connection, Domain, connect
from virtstack.virt.errors import ErrorCode, VirtError


class OptKind(Enum):
    BOOL = "bool"
    STRING = "string"
    DATA = "data"


@dataclass(frozen=True)
class Opt:
    """One command option. `positional` options may be given as bare words, in declaration order."""

    name: str
    kind: OptKind = OptKind.BOOL
    required: bool = False
    positional: bool = False
    help: str = ""


class CommandFailed(Exception):
    """A command failed; its `error: ...` lines are already printed."""


@dataclass(frozen=True)
class Command:
    """A vsh command: name, options, handler."""

    name: str
    opts: tuple[Opt, ...]
    handler: Callable[[Ctl, ParsedCommand], None]
    help: str = ""
    #: True when the command can run with no daemon (vsh without -c, or --local)
    local_ok: bool = False


@dataclass
class ParsedCommand:
    """A command with its option values (bool options: True when given; strings: the text)."""

    command: Command
    values: dict[str, str | bool] = field(default_factory=dict)

    def flag(self, name: str) -> bool:
        return bool(self.values.get(name, False))

    def string(self, name: str) -> str | None:
        value = self.values.get(name)
        return value if isinstance(value, str) else None

    def required(self, name: str) -> str:
        value = self.values[name]
        assert isinstance(value, str)
        return value


class UsageError(Exception):
    """Bad command line; the message is virsh's sentence without the `error: ` prefix."""


def parse_command(table: dict[str, Command], words: Sequence[str]) -> ParsedCommand:
    """One command's words -> ParsedCommand, with virsh's errors for bad input."""
    name, args = words[0], list(words[1:])
    command = table.get(name)
    if command is None:
        raise UsageError(f"unknown command: '{name}'")
    by_name = {o.name: o for o in command.opts}
    positional = [o for o in command.opts if o.positional]
    parsed = ParsedCommand(command)
    i = 0
    while i < len(args):
        word = args[i]
        i += 1
        if word.startswith("--") and len(word) > 2:
            key, eq, inline = word[2:].partition("=")
            opt = by_name.get(key)
            if opt is None:
                raise UsageError(f"command '{name}' doesn't support option --{key}")
            if opt.name in parsed.values:
                raise UsageError(f"option --{opt.name} already seen")
            if opt.kind is OptKind.BOOL:
                if eq:
                    raise UsageError(f"invalid '=' after option --{key}")
                parsed.values[opt.name] = True
            elif eq:
                parsed.values[opt.name] = inline
            elif i < len(args):
                parsed.values[opt.name] = args[i]
                i += 1
            else:
                raise UsageError(f"expected syntax: --{opt.name} <{opt.kind.value}>")
        else:
            slot = next((o for o in positional if o.name not in parsed.values), None)
            if slot is None:
                raise UsageError(f"unexpected data '{word}'")
            parsed.values[slot.name] = word
    for opt in command.opts:
        if opt.required and opt.name not in parsed.values:
            raise UsageError(f"command '{name}' requires <{opt.name}> option")
    return parsed


def split_batch(text: str) -> list[list[str]]:
    """A one-argument command string -> commands, with virsh's own tokenizer rules (vshCommandStringGetArg).

    `;` and newlines end a command; a word starting with `#` comments out the rest of its line; `'...'`
    quotes literally (an unclosed one runs to the end), `"..."` quotes with `\\` escaping (an unclosed
    one is virsh's "missing \"" error), `\\` escapes outside single quotes and a trailing one is
    "dangling \\"; backslash-newline vanishes. Raises UsageError with virsh's sentence.
    """
    commands: list[list[str]] = [[]]
    i, n = 0, len(text)
    while True:
        while i < n and (text[i] in " \t" or (text[i] == "\\" and text[i + 1 : i + 2] == "\n")):
            i += 2 if text[i] == "\\" else 1
        if i >= n:
            break
        if text[i] in ";\n":
            commands.append([])
            i += 1
            continue
        if text[i] == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
            commands.append([])
            continue
        word, i = _read_word(text, i)
        commands[-1].append(word)
    return [c for c in commands if c]


def _read_word(text: str, i: int) -> tuple[str, int]:
    """One word starting at text[i] -> (word, index after it)."""
    out: list[str] = []
    single = double = False
    n = len(text)
    while i < n:
        c = text[i]
        if not single and not double and c in " \t;\n":
            break
        if not double and c == "'":
            single = not single
            i += 1
            continue
        if not single and c == "\\":
            i += 1
            if i >= n:
                raise UsageError("dangling \\")
            if text[i] == "\n":
                i += 1
                continue
            c = text[i]
        elif not single and c == '"':
            double = not double
            i += 1
            continue
        out.append(c)
        i += 1
    if double:
        raise UsageError('missing "')
    return "".join(out), i


class Ctl:
    """What commands see: output helpers, the quiet flag, and the (lazily opened) connection."""

    def __init__(
        self,
        uri: str | None,
        *,
        readonly: bool = False,
        quiet: bool = False,
        local: bool = False,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.uri = uri
        self.readonly = readonly
        self.quiet = quiet
        self.local = local
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._conn: Connection | None = None

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            raise CommandFailed
        return self._conn

    def open(self) -> None:
        """Connect as virsh does at start-up; failure prints virsh's two error lines."""
        if self._conn is not None:
            return
        try:
            self._conn = connect(self.uri, readonly=self.readonly)
        except VirtError as exc:
            self.error("failed to connect to the hypervisor")
            self.error(exc.message)
            raise CommandFailed from None

    def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except VirtError:
                pass

    def print(self, text: str) -> None:
        self.out.write(text)

    def print_extra(self, text: str) -> None:
        """vshPrintExtra: suppressed by -q."""
        if not self.quiet:
            self.out.write(text)

    def error(self, text: str) -> None:
        self.out.flush()
        self.err.write(f"error: {text}\n")
        self.err.flush()

    def fail(self, text: str, cause: VirtError | None = None) -> CommandFailed:
        """Print virsh's sentence and libvirt's error line under it; raise the result."""
        self.error(text)
        if cause is not None:
            self.error(cause.message)
        return CommandFailed()

    def domain(self, parsed: ParsedCommand, opt: str = "domain", by_id: bool = True) -> Domain:
        """Resolve a domain argument like virsh: by id if numeric, then uuid, then name."""
        key = parsed.required(opt)
        conn = self.conn
        if by_id and key.isdigit():
            try:
                return conn.lookup_by_id(int(key))
            except VirtError:
                pass
        if _looks_like_uuid(key):
            try:
                return conn.lookup_by_uuid(key)
            except VirtError:
                pass
        try:
            return conn.lookup_by_name(key)
        except VirtError as exc:
            if exc.code not in (ErrorCode.NO_DOMAIN, ErrorCode.INVALID_ARG):
                raise self.fail(f"failed to get domain '{key}'", exc) from None
            raise self.fail(f"failed to get domain '{key}'") from None


def _looks_like_uuid(text: str) -> bool:
    hexdigits = [c for c in text if c not in "- "]
    return len(hexdigits) == 32 and all(c in "0123456789abcdefABCDEF" for c in hexdigits)


#: virsh's limit on files it reads (VSH_MAX_XML_FILE): larger ones fail with EOVERFLOW
MAX_FILE_SIZE = 10 * 1024 * 1024


def read_file(ctl: Ctl, path: str) -> str:
    """The file's text, or virsh's "Failed to open/read file" errors (virFileReadAll's wording).

    At most MAX_FILE_SIZE bytes are read, so /dev/zero fails fast as in virsh. Bytes that are not UTF-8
    survive as surrogate escapes: whoever consumes the text rejects them with a libvirt error.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise ctl.fail(f"Failed to open file '{path}': {exc.strerror}") from None
    try:
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_SIZE:
            chunk = os.read(fd, MAX_FILE_SIZE + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise ctl.fail(f"Failed to read file '{path}': {exc.strerror}") from None
    finally:
        os.close(fd)
    if size > MAX_FILE_SIZE:
        raise ctl.fail(f"Failed to read file '{path}': {os.strerror(errno.EOVERFLOW)}")
    return b"".join(chunks).decode("utf-8", "surrogateescape")
