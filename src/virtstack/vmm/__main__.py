"""`virtstack-vmm`: the machine monitor's QEMU-like command line (not built yet)."""

import sys


def main() -> int:
    print("virtstack-vmm: the machine monitor is not built yet (layer 2 has its own issue)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
