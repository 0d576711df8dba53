"""libvirt's XML formats as declarative models: domain, devices, capabilities.

- `virt.xml.domain`: `DomainDef`, `parse_domain(xml)`, `format_domain(d, inactive=, secure=)`.
- `virt.xml.devices.*`: one element family a module (disk, controller, interface, chardev, ...).
- `virt.xml.capabilities`: `build_capabilities(caps, host_facts())`, `format_capabilities`.
- `virt.xml.base`: the field declarations (`attr`, `child`, `ctext`, ...) every model is made of.
The QEMU driver's define-time defaults live in `virt.drivers.qemu.defaults` (`apply_qemu_defaults`).
"""
