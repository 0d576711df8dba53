"""Score a folder of libvirt golden pairs: one PASS/FAIL line per case, then totals per scoreboard."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m virtstack.testing.conformance")
    parser.add_argument("kind", choices=["qemu-argv", "domain"], help="which transformation to score")
    parser.add_argument("folder", type=Path, help="a folder in the layout of shared/libvirt/samples/<kind>")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    if args.kind == "qemu-argv":
        from virtstack.testing.conformance import qemu_argv

        return qemu_argv.main(args.folder)
    from virtstack.testing.conformance import domain

    return domain.main(args.folder)


if __name__ == "__main__":
    sys.exit(main())
