"""Reproducible speed measurements (``python -m benchmarks [name ...]``); not timed tests."""
