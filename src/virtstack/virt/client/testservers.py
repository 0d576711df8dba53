"""Deprecated path of `virtstack.testing.servers`, kept only until the last importers switch; do not use."""

from virtstack.testing.servers import (
    GUEST_QEMU_CONF,
    PrivateLibvirtd,
    PrivateVirtstackd,
    destroy_guests,
    start_libvirtd,
    start_virtstackd,
    unavailable_reason,
)

__all__ = [
    "GUEST_QEMU_CONF",
    "PrivateLibvirtd",
    "PrivateVirtstackd",
    "destroy_guests",
    "start_libvirtd",
    "start_virtstackd",
    "unavailable_reason",
]
