"""Benchmarks of responder against a real `responder serve` process on loopback.

`bench/run` runs them all (see `bench.suite`); every figure is reported next to a baseline
measured in the same run, and the tables are appended to docs/performance.md.
"""
