"""`virtstack`: the project's main entry. `virtstack run` is the all-in-one job behind `make run`."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from virtstack.testing.guest import MARKER, build_guest, qemu_argv


def run_demo_guest() -> int:
    """Boot the demo guest under QEMU (TCG) with its serial console on this terminal."""
    guest = build_guest()
    argv = [*qemu_argv(guest), "-serial", "mon:stdio" if sys.stdin.isatty() else "stdio"]
    print(f"virtstack: booting the demo guest (kernel {guest.kernel.name}); it prints {MARKER!r} when up.")
    print("virtstack: Ctrl-A X quits QEMU." if sys.stdin.isatty() else "virtstack: stop with Ctrl-C.", flush=True)
    stdin = None if sys.stdin.isatty() else subprocess.DEVNULL
    try:
        return subprocess.run(argv, stdin=stdin, check=False).returncode
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="virtstack", description="The virtstack all-in-one entry point.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="the main job: virtstackd with the demo guest defined and running")
    sub.add_parser("guest", help="boot the demo guest under plain QEMU with its console on this terminal")
    args = parser.parse_args(argv)
    os.environ.setdefault("VIRTSTACK_LOG", "warning")
    if args.command == "run":
        from virtstack.demo import run_stack
        from virtstack.virt.errors import VirtError

        try:
            return run_stack()
        except (VirtError, RuntimeError, TimeoutError) as e:
            print(f"virtstack: error: {e}", file=sys.stderr)
            return 1
    return run_demo_guest()


if __name__ == "__main__":
    sys.exit(main())
