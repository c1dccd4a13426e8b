"""Coordinators: dedup claims, cooldowns, run budgets and locks, in-process or on Redis."""
