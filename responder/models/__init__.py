"""Frozen pydantic models with no IO: alerts, payloads, rules, plans, runs."""
