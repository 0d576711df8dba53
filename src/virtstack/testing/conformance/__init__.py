"""Conformance scoring against libvirt's golden data: `python -m virtstack.testing.conformance KIND DIR`."""
