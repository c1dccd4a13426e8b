"""Monitored targets: the PostgreSQL and Redis servers responder watches, never its own."""
