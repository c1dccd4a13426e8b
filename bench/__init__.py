"""Benchmarks of responder against a real `responder serve` process on loopback.

`bench/run` runs them all (see `bench.suite`); every figure is reported next to a baseline
measured in the same run, each run's raw results are kept in bench/results/ (`bench.results`)
and the summary in docs/performance.md is regenerated from the latest (`bench.summary`).
"""
