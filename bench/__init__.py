"""virtstack benchmarks: `python -m bench` runs them and prints figures and ratios against baselines."""
