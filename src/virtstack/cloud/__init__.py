"""Layer 4: the OpenStack role (identity, compute, images, networks, scheduler). Built by its own issue."""
