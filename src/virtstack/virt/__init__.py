"""Layer 3, the libvirt role: XML models, hypervisor drivers, the RPC daemon, client and CLI."""
