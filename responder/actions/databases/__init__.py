"""The database family: `postgres.query`, the PostgreSQL backend signals and `redis.info`."""
