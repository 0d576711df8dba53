"""Layer 1: the KVM API (/dev/kvm ioctls) in Python. Built by its own issue; only the speed probe lives here now."""
