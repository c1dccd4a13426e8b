"""Connecting to PostgreSQL and Redis servers, for every adapter that does (the store, the
coordinator, the monitored targets): bounded sessions, and servers named without passwords."""
