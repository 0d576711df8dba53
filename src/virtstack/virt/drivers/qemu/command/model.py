"""The builder's inputs beyond the definition (RuntimeContext) and its output (QemuCommand)."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from virtstack.virt.drivers.qemu.command.escape import shell_env, shell_word
from virtstack.virt.drivers.qemu.command.hostcpu import host_features, host_tsc
from virtstack.virt.drivers.qemu.config import QemuDriverConfig, short_name


@dataclass
class QemuCommand:
    """A QEMU process to exec: environment (replacing the daemon's), argv (argv[0] the emulator) and the
    descriptors the child must inherit (`subprocess.Popen(argv, env=env, pass_fds=pass_fds)`)."""

    env: dict[str, str]
    argv: list[str]
    pass_fds: list[int] = field(default_factory=list)

    def to_shell_line(self) -> str:
        """One line, environment first, as `virsh domxml-to-native qemu-argv` prints it."""
        words = [shell_env(k, v) for k, v in self.env.items()]
        words += [shell_word(a) for a in self.argv]
        return " ".join(words)

    def to_args_file(self) -> str:
        """libvirt's test-suite layout: one word per line joined with ` \\`."""
        words = [shell_env(k, v) for k, v in self.env.items()]
        words += [shell_word(a) for a in self.argv]
        return " \\\n".join(words) + "\n"


@dataclass(frozen=True)
class FdRequest:
    """A file the builder would rather hand to QEMU as an open descriptor than by path.

    kind: "unix-listen" (a bound, listening socket at `path`) or "file-append" (opened for appending).
    `purpose` names it the way libvirt's -add-fd opaque does, e.g. "serial0-source", "charserial1".
    """

    purpose: str
    path: str
    kind: str


@dataclass
class RuntimeContext:
    """Per-start facts the definition does not hold.

    `lib_dir` and `runtime_dir` are the per-domain directories libvirt names
    `<lib dir>/domain-<ID>-<NAME>/` and `<state dir>/domain-<ID>-<NAME>/`. The monitor is either a socket
    path QEMU listens on or an fd the caller has already bound (`monitor_fd`). `fds` maps a purpose
    (e.g. "tap:net0", "chardev:charserial0") to a pre-opened descriptor to pass instead of a path.
    """

    dom_id: int
    lib_dir: str
    runtime_dir: str
    monitor_path: str | None = None
    monitor_fd: int | None = None
    fds: dict[str, int] = field(default_factory=dict)
    host_cpu_model: str | None = None
    # virFileIsCDROM; the upstream test harness replaces it with a fake, so it is injectable
    cdrom_check: Callable[[str], bool] | None = None
    # secrets the secret driver holds, by uuid or as "usage:<usage id>"
    secrets: set[str] = field(default_factory=set)
    # storage pools the storage driver holds, by name
    storage_pools: set[str] = field(default_factory=set)
    # fd groups handed over with virDomainFDAssociate: name -> fds
    fd_groups: dict[str, list[int]] = field(default_factory=dict)
    # firmware descriptor files to choose from; None means look on this host
    firmware_descriptors: list[str] | None = None
    # DRM render node for GL displays; None means the first /dev/dri/renderD* of this host
    render_node: str | None = None
    # opens (or pretends to open) a descriptor for a chardev path, as libvirt does at start;
    # None keeps paths on the command line (what domxml-to-native shows)
    open_fd: Callable[[FdRequest], int] | None = None
    # this host's CPU features in libvirt CPU-map names (None: unknown, no host CPU checks)
    host_cpu: frozenset[str] | None = field(default_factory=host_features)
    # this host's TSC rate in Hz and whether KVM can scale it (None: unknown, not checked)
    host_tsc: tuple[int, bool] | None = field(default_factory=host_tsc)
    # indexes of <graphics> whose SPICE TLS port libvirt allocated itself (qemu.conf's spice_tls only
    # vets a TLS port written in the XML)
    allocated_tls_graphics: set[int] = field(default_factory=set)
    # the start time a <clock offset='variable'> is counted from (seconds since the epoch)
    now: float = field(default_factory=time.time)

    def is_cdrom(self, path: str) -> bool:
        return (self.cdrom_check or host_is_cdrom)(path)

    @classmethod
    def for_domain(
        cls, name: str, dom_id: int, config: QemuDriverConfig, *, monitor_fd: int | None = None
    ) -> RuntimeContext:
        """The directories libvirt would use for domain `name` with id `dom_id` (-1 when not running)."""
        short = short_name(name)
        lib = f"{config.lib_dir}/domain-{dom_id}-{short}"
        run = f"{config.state_dir}/domain-{dom_id}-{short}"
        return cls(
            dom_id=dom_id,
            lib_dir=lib,
            runtime_dir=run,
            monitor_path=None if monitor_fd is not None else f"{lib}/monitor.sock",
            monitor_fd=monitor_fd,
        )


def host_is_cdrom(path: str) -> bool:
    """virFileIsCDROM without the ioctl: a block device whose kernel name is srN."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    if not stat.S_ISBLK(st.st_mode):
        return False
    return os.path.basename(os.path.realpath(path)).startswith("sr")
