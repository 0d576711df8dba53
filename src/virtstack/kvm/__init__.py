"""Layer 1: the KVM API (/dev/kvm ioctls) through ctypes — ABI table, fd objects, and the speed probe.

`abi` (structs + ioctl numbers), `system.Kvm` / `vm.Vm` / `vcpu.Vcpu` (one fd type each), `errors.KvmError`,
`probe` (is KVM usable *and fast*?), `accel.choose_accel()` (the per-boot cached answer callers use).
No devices and no policy beyond the probe live here.
"""
