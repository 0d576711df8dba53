"""Layer 2: virtstack's machine monitor on layer 1, driven over QMP. Built by its own issue."""
