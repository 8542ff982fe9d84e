"""Benchmarks: the canonical reference loop, timing helpers and the sections of scripts/benchmark.py."""
