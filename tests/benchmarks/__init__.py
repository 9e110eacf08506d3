"""Sourcebook's benchmark suite (``make bench``): see ``tests/benchmarks/run.py``."""
