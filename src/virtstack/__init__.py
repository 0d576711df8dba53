"""virtstack: the classic virtualization stack (KVM, QEMU, libvirt, OpenStack roles) in Python."""

__version__ = "0.1.0"
