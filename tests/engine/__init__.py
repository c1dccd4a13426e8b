"""Tests of responder/engine: runs, gating, approvals, recovery, through the in-process app."""
