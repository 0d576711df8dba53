"""Re-ask a private real libvirtd 9.0 for the answer to every NAME.xml here (NAME.args or NAME.err).

Run as root on a machine with libvirt-daemon 9.0 and QEMU 7.2 installed:
    .venv/bin/python tests/virt/drivers/qemu/data/libvirt_argv/regenerate.py
The daemon runs in its own mount namespace over temporary directories (stock qemu.conf plus
user/group root and security_driver none, as the libvirt-local samples) and is stopped afterwards.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from virtstack.testing.servers import start_libvirtd

HERE = Path(__file__).parent
QEMU_CONF = 'user = "root"\ngroup = "root"\nsecurity_driver = "none"\n'


def main() -> None:
    daemon = start_libvirtd(qemu_conf=QEMU_CONF)
    try:
        uri = daemon.uri("qemu:///system")
        for xml in sorted(HERE.glob("*.xml")):
            for old in (xml.with_suffix(".args"), xml.with_suffix(".err")):
                old.unlink(missing_ok=True)
            run = subprocess.run(
                ["virsh", "-q", "-c", uri, "domxml-to-native", "qemu-argv", "--xml", str(xml)],
                capture_output=True,
                text=True,
                check=False,
            )
            if run.returncode == 0:
                xml.with_suffix(".args").write_text(run.stdout.strip() + "\n")
            else:
                xml.with_suffix(".err").write_text(run.stderr.strip() + "\n")
    finally:
        daemon.stop()


if __name__ == "__main__":
    main()
