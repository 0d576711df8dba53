"""The comparison runner: every figure taken on all targets in the same phase, call by call, interleaved.

Order within each round rotates, so no target always runs first (after an idle gap) or last. A target
that lacks a figure (Unsupported) is skipped; one that fails gets a note and drops out of that phase only.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.common import Options, Results, Stats, rss_mib
from bench.target import Target, Unsupported


def _rotated(targets: list[Target], round_no: int) -> list[Target]:
    if not targets:
        return []
    shift = round_no % len(targets)
    return targets[shift:] + targets[:shift]


def _each(results: Results, targets: list[Target], label: str, call: Callable[[Target], object]) -> list[Target]:
    """Run an untimed step on every target; returns those for which it worked."""
    ok = []
    for target in targets:
        try:
            call(target)
        except Unsupported:
            continue
        except Exception as exc:  # a target still being built must not stop the others' figures
            results.note(target.name, f"{label} failed: {type(exc).__name__}: {exc}")
            continue
        ok.append(target)
    return ok


def interleave(results: Results, targets: list[Target], metric: str, call: Callable[[Target], float],
               count: int) -> None:  # fmt: skip
    """`count` rounds of one timed call per target; one Stats per target that completed them all."""
    samples: dict[str, list[float]] = {t.name: [] for t in targets}
    active = list(targets)
    for round_no in range(count):
        for target in _rotated(list(active), round_no):
            try:
                samples[target.name].append(call(target))
            except Unsupported:
                active.remove(target)
            except Exception as exc:
                results.note(target.name, f"{metric} failed: {type(exc).__name__}: {exc}")
                active.remove(target)
    for target in active:
        if samples[target.name]:
            results.add(target.name, metric, Stats(tuple(samples[target.name])))


def rss(results: Results, targets: list[Target], metric: str) -> None:
    for target in targets:
        pid = target.daemon_pid
        if pid is not None:
            results.add(target.name, metric, Stats((rss_mib(pid),), "MiB"))


def boots(results: Results, targets: list[Target], opts: Options) -> None:
    """Start-to-marker: boot i happens on every target before boot i+1 on any."""
    created: dict[str, list[float]] = {t.name: [] for t in targets}
    seen: dict[str, list[float]] = {t.name: [] for t in targets}
    active = list(targets)
    for index in range(opts.boots):
        for target in _rotated(list(active), index):
            try:
                c, s = target.boot(index, opts.boot_timeout)
            except Unsupported:
                active.remove(target)
                continue
            except Exception as exc:
                results.note(target.name, f"boot failed: {type(exc).__name__}: {exc}")
                active.remove(target)
                continue
            created[target.name].append(c)
            seen[target.name].append(s)
    for target in active:
        if seen[target.name]:
            results.add(target.name, "create returns", Stats(tuple(created[target.name])))
            results.add(target.name, "start-to-marker", Stats(tuple(seen[target.name])))


def run(results: Results, targets: list[Target], opts: Options) -> None:
    """All phases, in an order that leaves each daemon empty again before the boots."""
    live = _each(results, targets, "warm-up", lambda t: t.warm_up())
    rss(results, live, "daemon RSS idle")
    interleave(results, live, "define+undefine", lambda t: t.define_undefine(), opts.api_iterations)
    with_lookup = _each(results, live, "lookup set-up", lambda t: t.lookup_setup())
    interleave(results, with_lookup, "lookup+XMLDesc", lambda t: t.lookup_xml(), opts.api_iterations)
    _each(results, with_lookup, "lookup tear-down", lambda t: t.lookup_teardown())
    if opts.domains > 0:
        count = opts.domains
        many: list[Target] = []
        for target in live:
            try:
                elapsed = target.define_many(count)
            except Unsupported:
                continue
            except Exception as exc:
                results.note(target.name, f"define {count} failed: {type(exc).__name__}: {exc}")
                _each(results, [target], "undefine after failure", lambda t: t.undefine_many())
                continue
            results.add(target.name, f"define {count} (total)", Stats((elapsed,)))
            many.append(target)
        interleave(results, many, f"listAllDomains ({count} doms)", lambda t: t.list_all(), opts.list_iterations)
        rss(results, many, f"daemon RSS {count} doms")
        _each(results, many, f"undefine {count}", lambda t: t.undefine_many())
    boots(results, live, opts)
