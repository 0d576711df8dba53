"""Hypervisor drivers behind one interface (base.py), chosen by the URI a client opens."""
