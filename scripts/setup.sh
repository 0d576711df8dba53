#!/usr/bin/env bash
# One set-up step shared by `make run` and `make test`: Debian packages, the guest kernel, the venv.
# Idempotent: with everything present it only checks and returns in a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages: the hypervisor and image tool, the guest's userland, and the real libvirt clients
# (virsh, libvirt-python) plus the real libvirtd used as a test oracle and benchmark baseline.
PACKAGES=(qemu-system-x86 qemu-utils busybox-static libvirt-clients python3-libvirt python3-venv
          libvirt-daemon libvirt-daemon-driver-qemu dnsmasq-base iproute2)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The project's virtualenv, on the system Python so the real libvirt-python (python3-libvirt) imports.
if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    /usr/bin/python3 -m venv --system-site-packages .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    log "installing virtstack with its dev extras"
    # pip's warnings about this machine's extra index locations are noise: keep them in a log
    # and show it only when the install fails.
    .venv/bin/pip install -q -e '.[dev]' >.venv/pip.log 2>&1 || { cat .venv/pip.log; exit 1; }
    touch "$stamp"
fi
# The test guest: Debian's cloud kernel (extracted, not installed) and the busybox initramfs.
.venv/bin/python -m virtstack.testing.guest --prepare >/dev/null
log "ready"
