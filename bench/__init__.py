"""Benchmarks: each script prints a table of figures measured against a baseline run beside it."""
