"""vsh: a virsh-compatible command line over virtstack's client (`vsh [-c URI] [-q] [-r] COMMAND ...`)."""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field

from virtstack.virt.cli.commands import COMMANDS
from virtstack.virt.cli.host import LIBRARY_VERSION, version_string
from virtstack.virt.cli.shell import CommandFailed, Ctl, ParsedCommand, UsageError, parse_command, split_batch
from virtstack.virt.client.uri import default_uri
from virtstack.virt.errors import VirtError

USAGE = """\

vsh [options]... [<command_string>]
vsh [options]... <command> [args...]

  options:
    -c | --connect=URI      hypervisor connection URI
    -h | --help             this help
    -q | --quiet            quiet mode
    -r | --readonly         connect readonly
    -v | --version          program version
    --local                 run domxml-to-native here, without a daemon

  commands:
"""


@dataclass
class Options:
    """Global options, before the command."""

    uri: str | None = None
    quiet: bool = False
    readonly: bool = False
    local: bool = False
    rest: list[str] = field(default_factory=list)


def parse_globals(argv: Sequence[str]) -> Options | str:
    """Options -> Options, or the text to print and exit 0 with (help/version)."""
    opts = Options()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-c", "--connect"):
            if i + 1 >= len(argv):
                raise UsageError(f"option '{arg}' requires an argument")
            opts.uri = argv[i + 1]
            i += 2
            continue
        if arg.startswith("--connect="):
            opts.uri = arg.split("=", 1)[1]
        elif arg.startswith("-c") and len(arg) > 2 and not arg.startswith("--"):
            opts.uri = arg[2:]
        elif arg in ("-q", "--quiet"):
            opts.quiet = True
        elif arg in ("-r", "--readonly"):
            opts.readonly = True
        elif arg == "--local":
            opts.local = True
        elif arg in ("-v", "--version"):
            return version_string(LIBRARY_VERSION) + "\n"
        elif arg in ("-h", "--help"):
            names = "".join(f"    {c.name:<20} {c.help}\n" for c in COMMANDS.values())
            return USAGE + names + "\n"
        elif arg == "--":
            opts.rest = list(argv[i + 1 :])
            return opts
        elif arg.startswith("-") and arg != "-":
            raise UsageError(f"unsupported option '{arg}'. See --help.")
        else:
            opts.rest = list(argv[i:])
            return opts
        i += 1
    return opts


def run(argv: Sequence[str], ctl_factory: type[Ctl] = Ctl) -> int:
    """Parse, connect if a command needs it, run every command; exit status of the last one."""
    try:
        parsed_globals = parse_globals(argv)
        if isinstance(parsed_globals, str):
            sys.stdout.write(parsed_globals)
            return 0
        opts = parsed_globals
        if not opts.rest:
            raise UsageError("vsh has no interactive mode; give a command (see --help)")
        batches = split_batch(opts.rest[0]) if len(opts.rest) == 1 else [opts.rest]
        commands: list[ParsedCommand] = [parse_command(COMMANDS, words) for words in batches]
    except UsageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    uri = opts.uri or default_uri()
    # without any URI, commands that can run locally do (vsh domxml-to-native qemu-argv FILE)
    local = opts.local or uri is None
    ctl = ctl_factory(uri, readonly=opts.readonly, quiet=opts.quiet, local=local)
    ok = True
    try:
        for parsed in commands:
            if not (parsed.command.local_ok and local):
                try:
                    ctl.open()
                except CommandFailed:
                    return 1
            try:
                parsed.command.handler(ctl, parsed)
                ok = True
            except CommandFailed:
                ok = False
            except VirtError as exc:
                ctl.error(exc.message)
                ok = False
            ctl.print_extra("\n")
    finally:
        # close first: output may be stuck on a full pipe, the in-process server's files must still go
        try:
            ctl.close()
        finally:
            sys.stdout.flush()
    return 0 if ok else 1


#: set (to anything but "" or "0") to see the traceback of an unexpected failure instead of one line
DEBUG_ENV = "VSH_DEBUG"


class Terminated(BaseException):
    """SIGTERM/SIGHUP arrived: unwind like Ctrl-C, so connections close and in-process servers clean up."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, _frame: object) -> None:
    raise Terminated(signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point: never a traceback, an unexpected failure is one `error:` line, exit 1."""
    for stream in (sys.stdout, sys.stderr):
        # argv bytes that are not UTF-8 arrive as surrogate escapes: echo them back as the bytes they were
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="surrogateescape")
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {signum: signal.signal(signum, _raise_terminated) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return run(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        return 1
    except Terminated as exc:  # the shell's convention for "killed by signal N"
        return 128 + exc.signum
    except Exception as exc:  # last resort: a bug must still look like a virsh error to scripts
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.write(f"error: {exc or type(exc).__name__}\n")
        return 1
    finally:
        for signum, handler in previous.items():  # main() may run inside a bigger program (tests)
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
