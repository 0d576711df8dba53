"""The tiny test guest: Debian's cloud kernel plus a busybox initramfs, built in seconds, cached by hash.

Its /init mounts proc/sys/dev, prints a marker line with the uptime, runs an optional command given on
the kernel command line (`vsrun="..."`, which the kernel hands to init as an environment variable),
powers off when the ACPI power button is pressed, and otherwise keeps a shell on the serial console.

`python -m virtstack.testing.guest --prepare` fetches the kernel (apt-get download + dpkg -x: installing
the package would run initramfs hooks for nothing) and builds the initramfs; the set-up step calls it.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from virtstack.common.atomic import write_atomic

MARKER = "VIRTSTACK-GUEST-READY"
BUSYBOX = Path("/bin/busybox")
KERNEL_PACKAGE = "linux-image-cloud-amd64"
#: Modules /init loads, in dependency order: the power button reaches userspace through evdev; the
#: virtio PCI transport and balloon driver let a guest with <memballoon model='virtio'/> answer balloon
#: requests (the cloud kernel builds virtio as modules).
MODULES = (
    "kernel/drivers/input/evdev.ko",
    "kernel/drivers/acpi/button.ko",
    "kernel/drivers/virtio/virtio_ring.ko",
    "kernel/drivers/virtio/virtio.ko",
    "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
    "kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
    "kernel/drivers/virtio/virtio_pci.ko",
    "kernel/drivers/virtio/virtio_balloon.ko",
)

INIT_SCRIPT = r"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /sbin /usr/bin /usr/sbin /root
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in /lib/modules/*.ko; do insmod "$m" 2>/dev/null; done
# Power off on the ACPI power button. The devices are opened here, before the marker, so a button
# press that follows the marker cannot reach evdev before anyone listens.
fd=3
for ev in /sys/class/input/event*; do
    [ -e "$ev/device/name" ] || continue
    case "$(cat "$ev/device/name")" in
        *"Power Button"*)
            eval "exec $fd<\"/dev/input/${ev##*/}\""
            (head -c 1 <&$fd >/dev/null && { echo "VIRTSTACK-GUEST-POWEROFF"; poweroff -f; }) &
            fd=$((fd + 1)) ;;
    esac
done
read up _ </proc/uptime
echo "@MARKER@ uptime=$up"
if [ -n "$vsrun" ]; then
    sh -c "$vsrun"
    echo "VIRTSTACK-GUEST-RUN-EXIT status=$?"
fi
export HOME=/root PS1='guest# '
while true; do
    setsid cttyhack sh
done
"""


@dataclass(frozen=True)
class Guest:
    """A bootable guest: kernel, initramfs, the command line to pass, and the marker /init prints."""

    kernel: Path
    initrd: Path
    cmdline: str
    marker: str = MARKER

    def cmdline_with(self, run: str | None = None) -> str:
        """The kernel command line, with `run` as the optional command /init executes."""
        if run is None:
            return self.cmdline
        if '"' in run:
            raise ValueError("the guest command cannot contain a double quote (kernel command line syntax)")
        return f'{self.cmdline} vsrun="{run}"'


def cache_dir() -> Path:
    return Path(os.environ.get("VIRTSTACK_CACHE", Path.home() / ".cache" / "virtstack"))


def kernel_root() -> Path:
    """Where the extracted kernel package lives (boot/vmlinuz-*, lib/modules/*)."""
    return cache_dir() / "kernel"


def fetch_kernel(root: Path | None = None) -> Path:
    """Extract Debian's cloud kernel into `root` unless it is there; returns the vmlinuz path."""
    root = root or kernel_root()
    found = sorted(root.glob("boot/vmlinuz-*"))
    if found:
        return found[-1]
    package = _kernel_image_package()
    with tempfile.TemporaryDirectory() as tmp:
        _let_apt_write(Path(tmp))
        subprocess.run(["apt-get", "download", "-qq", package], cwd=tmp, check=True)
        debs = list(Path(tmp).glob(f"{package}_*.deb"))
        if len(debs) != 1:
            raise RuntimeError(f"apt-get download {package} left {len(debs)} matching packages in {tmp}")
        partial = root.with_name(root.name + ".part")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        subprocess.run(["dpkg", "-x", str(debs[0]), str(partial)], check=True)
        shutil.rmtree(root, ignore_errors=True)
        partial.rename(root)
    return sorted(root.glob("boot/vmlinuz-*"))[-1]


def _let_apt_write(directory: Path) -> None:
    """apt-get download drops privileges to `_apt`: hand it the directory (and no one else)."""
    if os.getuid() != 0:
        return
    try:
        apt_uid = pwd.getpwnam("_apt").pw_uid
    except KeyError:
        return
    os.chown(directory, apt_uid, -1)
    os.chmod(directory, 0o700)


def _kernel_image_package() -> str:
    """The versioned image package that the `linux-image-cloud-amd64` metapackage points at."""
    for attempt in range(2):
        out = subprocess.run(
            ["apt-cache", "depends", KERNEL_PACKAGE], capture_output=True, text=True, check=False
        ).stdout
        for line in out.splitlines():
            dep = line.strip().removeprefix("Depends:").strip()
            if line.strip().startswith("Depends:") and dep.startswith("linux-image-") and dep[12:13].isdigit():
                return dep
        if attempt == 0:
            subprocess.run(["apt-get", "update", "-qq"], check=True)
    raise RuntimeError(f"apt knows no kernel image behind {KERNEL_PACKAGE}")


def _cpio_newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A cpio archive in the kernel's `newc` format: (path, mode, data) entries, then the trailer."""
    out = io.BytesIO()

    def pad(n: int) -> None:
        out.write(b"\0" * ((4 - n % 4) % 4))

    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        raw_name = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw_name), 0]
        header = b"070701" + b"".join(f"{f:08x}".encode() for f in fields)
        out.write(header + raw_name)
        pad(len(header) + len(raw_name))
        out.write(data)
        pad(len(data))
    return out.getvalue()


def _initramfs_entries(modules_dir: Path) -> list[tuple[str, int, bytes]]:
    dir_mode, file_mode, exec_mode, link_mode = 0o040755, 0o100644, 0o100755, 0o120777
    entries: list[tuple[str, int, bytes]] = [
        (d, dir_mode, b"") for d in ("bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules")
    ]
    entries.append(("bin/busybox", exec_mode, BUSYBOX.read_bytes()))
    entries.append(("bin/sh", link_mode, b"busybox"))
    entries.append(("init", exec_mode, INIT_SCRIPT.replace("@MARKER@", MARKER).encode()))
    for index, module in enumerate(MODULES):
        data = (modules_dir / module).read_bytes()
        entries.append((f"lib/modules/{index:02d}-{Path(module).name}", file_mode, data))
    return entries


def build_guest(root: Path | None = None) -> Guest:
    """Return the test guest, building the initramfs only when its inputs changed (content hash)."""
    kernel = fetch_kernel(root)
    release = kernel.name.removeprefix("vmlinuz-")
    modules_dir = kernel.parent.parent / "lib" / "modules" / release
    entries = _initramfs_entries(modules_dir)
    digest = hashlib.sha256()
    for name, mode, data in entries:
        digest.update(f"{name}\0{mode}\0{len(data)}\0".encode())
        digest.update(data)
    initrd = cache_dir() / "guest" / f"initrd-{digest.hexdigest()[:16]}.img"
    if not initrd.exists():
        initrd.parent.mkdir(parents=True, exist_ok=True)
        # mtime=0 keeps the image byte-identical across builds of the same inputs.
        write_atomic(initrd, gzip.compress(_cpio_newc(entries), compresslevel=1, mtime=0), mode=0o644)
    return Guest(kernel=kernel, initrd=initrd, cmdline="console=ttyS0 quiet panic=-1")


def domain_xml(
    name: str,
    guest: Guest | None = None,
    *,
    memory_mib: int = 128,
    vcpus: int = 1,
    acpi: bool = True,
    domain_type: str = "qemu",
    uuid: str | None = None,
    run: str | None = None,
    serial_log: Path | None = None,
) -> str:
    """A libvirt domain XML that boots the test guest with a pty serial console (and optional log)."""
    guest = guest or build_guest()
    uuid_xml = f"\n  <uuid>{uuid}</uuid>" if uuid else ""
    features = "\n  <features>\n    <acpi/>\n  </features>" if acpi else ""
    log_xml = f"\n      <log file={quoteattr(str(serial_log))} append='off'/>" if serial_log else ""
    return f"""<domain type='{domain_type}'>
  <name>{escape(name)}</name>{uuid_xml}
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>{vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{escape(str(guest.kernel))}</kernel>
    <initrd>{escape(str(guest.initrd))}</initrd>
    <cmdline>{escape(guest.cmdline_with(run))}</cmdline>
  </os>{features}
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <serial type='pty'>
      <target port='0'/>{log_xml}
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <memballoon model='none'/>
  </devices>
</domain>
"""


def qemu_argv(guest: Guest, *, memory_mib: int = 128, run: str | None = None, accel: str = "tcg") -> list[str]:
    """A plain QEMU command line for the guest (no libvirt): the baseline for tests and benchmarks.

    The serial console and the monitor are left to the caller (add `-serial ...`, `-qmp ...`).
    """
    return [
        "/usr/bin/qemu-system-x86_64",
        "-machine", "pc", "-accel", accel, "-m", str(memory_mib), "-smp", "1",
        "-nodefaults", "-no-user-config", "-display", "none",
        "-kernel", str(guest.kernel), "-initrd", str(guest.initrd), "-append", guest.cmdline_with(run),
    ]  # fmt: skip


def wait_for_text(path: Path, text: str, timeout: float = 60.0, poll: float = 0.02) -> str:
    """Poll a console log until `text` appears; returns the log so far. Raises TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            content = path.read_text(errors="replace")
        except FileNotFoundError:
            content = ""
        if text in content:
            return content
        if time.monotonic() > deadline:
            raise TimeoutError(f"{text!r} not seen in {path} within {timeout}s; log so far:\n{content[-2000:]}")
        time.sleep(poll)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m virtstack.testing.guest", description=__doc__)
    parser.add_argument("--prepare", action="store_true", help="fetch the kernel and build the initramfs")
    args = parser.parse_args(argv)
    guest = build_guest()
    if args.prepare:
        print(f"guest: kernel {guest.kernel.name}, initramfs {guest.initrd.name}")
    else:
        print(f"kernel={guest.kernel}\ninitrd={guest.initrd}\ncmdline={guest.cmdline}\nmarker={guest.marker}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
