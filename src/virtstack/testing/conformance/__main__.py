"""Score a folder of libvirt golden pairs: one PASS/FAIL line per case, then totals per scoreboard."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

#: kind on the command line -> the module that scores it (each has `main(folder) -> int`)
SCORERS = {"qemu-argv": "qemu_argv", "domain": "domain"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m virtstack.testing.conformance")
    parser.add_argument("kind", choices=sorted(SCORERS), help="which transformation to score")
    parser.add_argument("folder", type=Path, help="a folder in the layout of shared/libvirt/samples/<kind>")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    scorer = importlib.import_module(f"virtstack.testing.conformance.{SCORERS[args.kind]}")
    result: int = scorer.main(args.folder)
    return result


if __name__ == "__main__":
    sys.exit(main())
