"""Tests of responder/adapters/store: one contract suite per store role over both backends,
and what only one backend shows (SQLite writer thread, PostgreSQL batching and fast paths)."""
