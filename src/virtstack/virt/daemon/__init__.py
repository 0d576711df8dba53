"""virtstackd: the daemon that serves libvirt's RPC protocol to virsh, libvirt-python and our client."""
