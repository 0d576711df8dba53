"""qemu.conf defaults: the stock daemon and libvirt's test harness are one dataclass apart."""

from __future__ import annotations

from virtstack.virt.drivers.qemu.command import RuntimeContext
from virtstack.virt.drivers.qemu.config import QemuDriverConfig


def test_system_defaults_are_stock_libvirtd() -> None:
    cfg = QemuDriverConfig.system()
    assert (cfg.lib_dir, cfg.vnc_listen, cfg.spice_tls, cfg.seccomp_sandbox) == (
        "/var/lib/libvirt/qemu",
        "127.0.0.1",
        False,
        1,
    )
    assert cfg.env_user is None and cfg.default_tls_x509_verify is True


def test_harness_settings_and_overrides() -> None:
    cfg = QemuDriverConfig.harness()
    assert cfg.lib_dir == "/tmp/lib" and cfg.spice_tls and cfg.spice_password == "123456"
    assert cfg.hugetlbfs_mounts == ["/dev/hugepages2M", "/dev/hugepages1G"]
    changed = cfg.with_overrides(vnc_sasl=True)
    assert changed.vnc_sasl and not cfg.vnc_sasl  # a copy, the original is untouched


def test_per_domain_directories_use_libvirts_names() -> None:
    cfg = QemuDriverConfig.system()
    rt = RuntimeContext.for_domain("a-very-long-domain-name-indeed", 3, cfg)
    assert rt.lib_dir == "/var/lib/libvirt/qemu/domain-3-a-very-long-domain-n"  # short name: 20 characters
    assert rt.runtime_dir == "/run/libvirt/qemu/domain-3-a-very-long-domain-n"
    assert rt.monitor_path == rt.lib_dir + "/monitor.sock"
    assert RuntimeContext.for_domain("x", 3, cfg, monitor_fd=9).monitor_path is None
