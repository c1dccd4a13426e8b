"""Async orchestration over ports: intake queue, gating, execution, recovery."""
