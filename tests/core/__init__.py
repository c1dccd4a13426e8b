"""Tests of the pure code (responder/core, responder/models): tables, no IO, no event loop."""
