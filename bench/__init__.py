"""Benchmarks: `python -m bench` runs them all (see __main__.py)."""
