"""Narrow Protocols, one per role the engine, the API and actions use; adapters implement them.

- `store`: the store's roles (alert log, runs, audit log, approvals, lifecycle) and `Store`.
- `coordination`: the `Coordinator` replicas share (claims, cooldowns, budgets, locks).
- `clock`: the `Clock` (time is an argument).
- `http`: outgoing HTTP (`HttpApi`).
- `targets`: monitored PostgreSQL and Redis servers by name (`SqlApi`, `RedisApi`).
- `flag_files`: flagd flag files on disk (`FlagFileApi`).
- `kubernetes`: the Kubernetes API calls actions make (`KubeApi`).

Import each Protocol from its module; this package re-exports nothing.
"""
