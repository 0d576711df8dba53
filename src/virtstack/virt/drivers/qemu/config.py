"""The QEMU driver's settings (qemu.conf) that shape the command line, with libvirt's defaults."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field


@dataclass
class QemuDriverConfig:
    """qemu.conf as the command builder sees it.

    `system()` gives a stock libvirtd 9.0 (qemu:///system on Debian), `harness()` the settings libvirt's
    own qemuxml2argvtest uses, so both scoreboards are one dataclass apart.
    """

    # directories
    lib_dir: str = "/var/lib/libvirt/qemu"
    state_dir: str = "/run/libvirt/qemu"
    log_dir: str = "/var/log/libvirt/qemu"
    cache_dir: str = "/var/cache/libvirt/qemu"
    channel_target_dir: str = "/var/lib/libvirt/qemu/channel/target"
    memory_backing_dir: str = "/var/lib/libvirt/qemu/ram"
    nvram_dir: str = "/var/lib/libvirt/qemu/nvram"
    snapshot_dir: str = "/var/lib/libvirt/qemu/snapshot"
    swtpm_storage_dir: str = "/var/lib/libvirt/swtpm"
    hugetlbfs_mounts: list[str] = field(default_factory=lambda: ["/dev/hugepages"])
    # environment the daemon starts QEMU with
    env_path: str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    env_user: str | None = None
    env_extra: dict[str, str] = field(default_factory=dict)
    # graphics
    vnc_listen: str = "127.0.0.1"
    vnc_auto_unix_socket: bool = False
    vnc_tls: bool = False
    vnc_tls_x509_cert_dir: str = "/etc/pki/libvirt-vnc"
    vnc_tls_x509_verify: bool = False
    vnc_sasl: bool = False
    vnc_sasl_dir: str = "/etc/sasl2"
    vnc_password: str | None = None
    spice_listen: str = "127.0.0.1"
    spice_tls: bool = False
    spice_tls_x509_cert_dir: str = "/etc/pki/libvirt-spice"
    spice_auto_unix_socket: bool = False
    spice_password: str | None = None
    spice_sasl: bool = False
    spice_sasl_dir: str = "/etc/sasl2"
    remote_display_port_min: int = 5900
    remote_display_port_max: int = 65535
    nographics_allow_host_audio: bool = False
    vnc_allow_host_audio: bool = False
    spice_allow_host_audio: bool = False
    # TLS for chardevs and disks
    default_tls_x509_cert_dir: str = "/etc/pki/qemu"
    default_tls_x509_verify: bool = True
    chardev_tls: bool = False
    chardev_tls_x509_cert_dir: str = "/etc/pki/libvirt-chardev"
    chardev_tls_x509_verify: bool = False
    nbd_tls: bool = False
    vxhs_tls: bool = False
    # process policy
    seccomp_sandbox: int = 1
    set_process_name: bool = False
    max_processes: int = 0
    max_files: int = 0
    dump_guest_core: bool = False
    mem_lock: bool = False
    stdio_handler: str = "logd"
    log_timestamp: bool = True
    deprecation_behavior: str = "none"
    # where the host has audio when nothing is configured (QEMU_AUDIO_DRV in the daemon's env)
    host_audio_driver: str | None = None
    slirp_helper: str | None = None
    # seen by -no-user-config handling and the master key secret
    master_key: bool = True

    @classmethod
    def system(cls) -> QemuDriverConfig:
        """Stock libvirtd 9.0 running as root on Debian 12 (what `virsh domxml-to-native` shows).

        As in libvirt, a VNC/SPICE/chardev certificate directory left unset in qemu.conf is the legacy
        /etc/pki/libvirt-<kind> when that exists on the host, else default_tls_x509_cert_dir; with no
        hugetlbfs_mount set, the hugetlbfs file systems mounted on the host are used.
        """
        cfg = cls()
        cfg.hugetlbfs_mounts = hugetlbfs_mounts()
        for kind in ("vnc", "spice", "chardev"):
            field_name = f"{kind}_tls_x509_cert_dir"
            if not os.path.isdir(getattr(cfg, field_name)):
                setattr(cfg, field_name, cfg.default_tls_x509_cert_dir)
        return cfg

    @classmethod
    def harness(cls) -> QemuDriverConfig:
        """libvirt 9.0's tests/qemuxml2argvtest.c mymain() settings (see samples/qemu-argv/README.md)."""
        return cls(
            lib_dir="/tmp/lib",
            state_dir="/tmp/run",
            log_dir="/tmp/log",
            cache_dir="/tmp/cache",
            channel_target_dir="/tmp/channel",
            env_path="/bin",
            env_user="test",
            spice_tls=True,
            spice_password="123456",
            hugetlbfs_mounts=["/dev/hugepages2M", "/dev/hugepages1G"],
        )

    def with_overrides(self, **changes: object) -> QemuDriverConfig:
        """A copy with some settings changed, for per-case harness overrides."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def domain_dir(self, base: str, dom_id: int, name: str) -> str:
        """libvirt's per-domain directory name: <base>/domain-<ID>-<NAME> (name shortened to 20)."""
        return f"{base}/domain-{dom_id}-{short_name(name)}"


def hugetlbfs_mounts(mounts: str = "/proc/mounts") -> list[str]:
    """Where hugetlbfs is mounted on this host (libvirt looks them up when qemu.conf names none)."""
    try:
        with open(mounts) as f:
            return [line.split()[1] for line in f if len(line.split()) > 2 and line.split()[2] == "hugetlbfs"]
    except OSError:
        return []


def short_name(name: str) -> str:
    """virDomainDefGetShortName: the first 20 characters of the name (libvirt counts wide chars)."""
    return name[:20]
