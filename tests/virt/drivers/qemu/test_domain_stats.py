"""The pure helpers behind vcpuinfo, vcpupin, emulatorpin and dommemstat, fed with sample text."""

from __future__ import annotations

import os

import pytest

from virtstack.virt.drivers.qemu import definition as defs
from virtstack.virt.drivers.qemu import domain_stats as ds
from virtstack.virt.drivers.qemu.process import StatInfo, parse_stat, read_stat
from virtstack.virt.errors import ErrorCode, ErrorDomain, VirtError, check_flags
from virtstack.virt.xml.domain import parse_domain

# proc(5) stat of a vCPU thread: comm with a space and parentheses, utime 150, stime 50, rss 1000, cpu 3
STAT = (
    "4242 (CPU 0/TCG (x)) S 1 4240 4240 0 -1 4194368 10 0 0 0 150 50 0 0 20 0 3 0 1000 1234567 1000 "
    "18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 -1 3 0 0 0 0 0 0 0 0 0 0 0 0 0"
)


def _domain(extra: str = "", vcpu: str = "<vcpu>2</vcpu>", devices: str = "") -> object:
    return parse_domain(
        f"""<domain type='qemu'><name>d</name><memory>131072</memory>{vcpu}{extra}
        <os><type>hvm</type></os><devices>{devices}</devices></domain>"""
    )


def test_parse_stat_reads_times_cpu_and_rss_after_the_command_name() -> None:
    info = parse_stat(STAT, clock_ticks=100, page_kib=4)
    assert info == StatInfo(user_ns=1_500_000_000, system_ns=500_000_000, last_cpu=3, rss_kib=4000)
    assert info.cpu_time_ns == 2_000_000_000


def test_read_stat_of_this_process_and_thread() -> None:
    whole = read_stat(os.getpid())
    thread = read_stat(os.getpid(), os.getpid())
    assert whole.rss_kib > 0 and thread.last_cpu in range(ds.present_cpu_count())
    with pytest.raises(OSError):
        read_stat(os.getpid(), 2**22 + 1)


def test_vcpu_counts_follow_current_and_maximum() -> None:
    both = _domain(vcpu="<vcpu current='1'>3</vcpu>")
    assert (defs.vcpus_current(both), defs.vcpus(both)) == (1, 3)
    plain = _domain()
    assert (defs.vcpus_current(plain), defs.vcpus(plain)) == (2, 2)


def test_pins_default_to_every_host_cpu() -> None:
    defn = _domain()
    assert defs.vcpu_pins(defn, 4) == [{0, 1, 2, 3}] * 2
    assert defs.emulator_pin(defn, 4) == {0, 1, 2, 3}


def test_pins_take_vcpupin_then_vcpu_cpuset() -> None:
    defn = _domain(
        "<cputune><vcpupin vcpu='1' cpuset='3'/><emulatorpin cpuset='0-1'/></cputune>",
        vcpu="<vcpu cpuset='2-3'>2</vcpu>",
    )
    assert defs.vcpu_pins(defn, 4) == [{2, 3}, {3}]
    assert defs.emulator_pin(defn, 4) == {0, 1}
    assert defs.emulator_pin(_domain(vcpu="<vcpu cpuset='2'>1</vcpu>"), 4) == {2}


def test_balloon_is_none_for_model_none() -> None:
    assert defs.balloon(_domain(devices="<memballoon model='none'/>")) is None
    assert defs.balloon(_domain(devices="<memballoon model='virtio'/>")) is not None


def test_balloon_stats_in_libvirts_order_without_uncollected_counters() -> None:
    guest = {
        "last-update": 1700000000,
        "stats": {
            "stat-htlb-pgfail": 0,
            "stat-swap-in": 8192,
            "stat-free-memory": 1048576,
            "stat-available-memory": ds.NOT_COLLECTED,
            "stat-minor-faults": -1,
            "stat-major-faults": 7,
        },
    }
    assert ds.balloon_stats(134217728, guest) == [
        (ds.MEMORY_STAT_ACTUAL_BALLOON, 131072),
        (0, 8),  # swap_in, KiB
        (2, 7),  # major faults, a count
        (4, 1024),  # unused, KiB
        (ds.MEMORY_STAT_LAST_UPDATE, 1700000000),
        (12, 0),
    ]
    assert ds.balloon_stats(1024, None) == [(ds.MEMORY_STAT_ACTUAL_BALLOON, 1)]


def test_flag_errors_carry_libvirts_wording() -> None:
    with pytest.raises(VirtError) as e:
        check_flags(0x13, 0x3, "qemuDomainGetVcpusFlags", ErrorDomain.QEMU)
    assert (e.value.code, e.value.domain) == (ErrorCode.INVALID_ARG, ErrorDomain.QEMU)
    assert str(e.value) == "unsupported flags (0x10) in function qemuDomainGetVcpusFlags"
    with pytest.raises(VirtError) as e:
        ds.check_exclusive_live_config(3)
    assert e.value.domain == ErrorDomain.DOMAIN
    assert str(e.value) == "Flags 'VIR_DOMAIN_AFFECT_LIVE' and 'VIR_DOMAIN_AFFECT_CONFIG' are mutually exclusive"
    ds.check_exclusive_live_config(1)
    check_flags(0x3, 0x3, "f", ErrorDomain.QEMU)


def test_reply_limits_of_the_daemon() -> None:
    with pytest.raises(VirtError, match="maxinfo > REMOTE_VCPUINFO_MAX"):
        ds.vcpu_bytes_limit(ds.REMOTE_VCPUINFO_MAX + 1, 1, "maxinfo")
    with pytest.raises(VirtError, match=r"ncpumaps \* maplen > REMOTE_CPUMAPS_MAX"):
        ds.vcpu_bytes_limit(1024, 1 << 14, "ncpumaps")
    ds.vcpu_bytes_limit(2, 1, "maxinfo")
