"""Tests of responder/actions/databases: `postgres.*` and `redis.info` against real servers."""
