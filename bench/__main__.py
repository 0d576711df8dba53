"""`python -m bench`: measure every target side by side, print figures, a table and ratios to baselines."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from bench import client_api, compare, driver, kvm_probe, raw_qemu, real_libvirtd, virtstackd
from bench.common import DRIVER, LIBVIRTD, RAW_QEMU, VIRTSTACKD, Options, Results
from bench.target import Target
from virtstack.common.atomic import write_atomic
from virtstack.testing.guest import Guest

Opener = Callable[[ExitStack, Results, Guest, str, Path], "Target | None"]


def _open_raw(stack: ExitStack, results: Results, guest: Guest, domain_type: str, workdir: Path) -> Target:
    target = raw_qemu.RawQemuTarget(guest, domain_type, workdir)
    results.note(RAW_QEMU, f"argv from {target.command.source}")
    return target


def _open_driver(stack: ExitStack, results: Results, guest: Guest, domain_type: str, workdir: Path) -> Target | None:
    reason = driver.why_unavailable()
    if reason is not None:
        results.note(DRIVER, f"skipped: {reason}")
        return None
    target = driver.DriverTarget(guest, domain_type, workdir)
    stack.callback(target.close)
    return target


# Explicit table: target name -> how to bring it up (baselines first; the table prints in this order).
TARGETS: dict[str, Opener] = {
    RAW_QEMU: _open_raw,
    LIBVIRTD: real_libvirtd.open_target,
    DRIVER: _open_driver,
    VIRTSTACKD: virtstackd.open_target,
    client_api.CLIENT: client_api.open_target,
}
SHORT_NAMES = {"raw-qemu": RAW_QEMU, "libvirtd": LIBVIRTD, "driver": DRIVER, "virtstackd": VIRTSTACKD,
               "client": client_api.CLIENT}  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--only", default="", help=f"comma-separated subset of: kvm,{','.join(SHORT_NAMES)}")
    p.add_argument("--api-iterations", type=int, default=Options.api_iterations, metavar="N",
                   help="define+undefine and lookup+XML repetitions (default %(default)s)")
    p.add_argument("--domains", type=int, default=Options.domains, metavar="N",
                   help="domains defined for listAllDomains/RSS figures, 0 to skip (default %(default)s)")
    p.add_argument("--list-iterations", type=int, default=Options.list_iterations, metavar="N")
    p.add_argument("--boots", type=int, default=Options.boots, metavar="N",
                   help="guest boots per target, 0 to skip (default %(default)s)")
    p.add_argument("--boot-timeout", type=float, default=Options.boot_timeout, metavar="S")
    p.add_argument("--kvm-boot", type=float, default=0, metavar="S",
                   help="also boot the fixture with TCG and with KVM (cut off after S s) to check the probe")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write every sample and ratio as JSON")
    return p  # fmt: skip


def print_table(results: Results) -> None:
    """Medians side by side: one row per figure, one column per target that has any."""
    targets = [t for t in TARGETS if results.figures.get(t)]
    if not targets:
        return
    metrics: list[str] = []
    for target in targets:
        metrics += [m for m in results.figures[target] if m not in metrics]
    print("\nmedians:")
    print(f"  {'':28}" + "".join(f"{t:>18}" for t in targets))
    for metric in metrics:
        cells = [results.get(t, metric) for t in targets]
        print(f"  {metric:28}" + "".join(f"{c.short() if c else '-':>18}" for c in cells))


def print_ratios(results: Results) -> None:
    ratios = results.ratios()
    if not ratios:
        print("\nratios: none (no target shares a figure with a baseline in this run)")
        return
    print("\nratios (target median / baseline median; < 1 means faster or smaller):")
    order = list(TARGETS)
    ratios.sort(key=lambda r: order.index(r[1]) if r[1] in order else len(order))  # stable: metrics keep their order
    for metric, target, baseline, ratio in ratios:
        print(f"  {metric:28} {target:17} vs {baseline:9} {ratio:6.2f}x")


def _open_targets(stack: ExitStack, results: Results, wanted: set[str], guest: Guest, domain_type: str,
                  workdir: Path) -> list[Target]:  # fmt: skip
    targets = []
    for name, opener in TARGETS.items():
        if wanted and name not in wanted:
            continue
        try:
            target = opener(stack, results, guest, domain_type, workdir)
            if target is not None:
                # let it finish initialising (libvirtd loads its QEMU driver after its socket is up) before
                # the next daemon starts: no "daemon start" figure may include another daemon's start-up
                target.warm_up()
        except Exception as exc:  # one broken target must not hide the others' figures
            results.note(name, f"skipped: {type(exc).__name__}: {exc}")
            continue
        if target is not None:
            targets.append(target)
    return targets


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    selected = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = selected - {"kvm", *SHORT_NAMES}
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    wanted = {SHORT_NAMES[s] for s in selected if s != "kvm"}
    results = Results()
    print("== kvm: speed probe", flush=True)
    domain_type = kvm_probe.run(results, iterations=1 if selected and "kvm" not in selected else 3)
    if args.kvm_boot > 0 or not selected or wanted:
        from virtstack.testing.guest import build_guest

        guest = build_guest()
    if args.kvm_boot > 0:
        print("== kvm: does the verdict match a real boot?", flush=True)
        kvm_probe.check_verdict(results, guest, args.kvm_boot)
    try:
        if not selected or wanted:
            with tempfile.TemporaryDirectory(prefix="vs-bench-") as tmp, ExitStack() as stack:
                opts = Options(api_iterations=args.api_iterations, domains=args.domains,
                               list_iterations=args.list_iterations, boots=args.boots,
                               boot_timeout=args.boot_timeout, workdir=Path(tmp))  # fmt: skip
                print("== targets", flush=True)
                targets = _open_targets(stack, results, wanted, guest, domain_type, opts.workdir)
                print(f"== measuring {', '.join(t.name for t in targets) or 'nothing'} (interleaved)", flush=True)
                compare.run(results, targets, opts)
    finally:  # figures taken are printed even if tearing a target down failed
        print_table(results)
        print_ratios(results)
        if args.json:
            write_atomic(args.json, json.dumps(results.to_json(), indent=1) + "\n", mode=0o644)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
