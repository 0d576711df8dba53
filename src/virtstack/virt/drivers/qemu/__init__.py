"""The QEMU driver: capabilities, definition -> argv, process lifecycle over QMP, on-disk state."""
