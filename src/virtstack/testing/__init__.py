"""Helpers shared by tests, benchmarks and the demo: the tiny guest, conformance scoring."""
