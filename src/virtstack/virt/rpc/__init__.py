"""libvirt's RPC wire protocol, sans I/O: XDR codec, `.x` parser, packets, programs, error mapping."""
