"""Tests of responder/adapters/coordination: one Coordinator contract over memory and Redis."""
