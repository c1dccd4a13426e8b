"""The only IO, one package per backend: `store/` (SQLite, PostgreSQL), `coordination/`
(in-process, Redis), `kubernetes/`, `targets/` (monitored PostgreSQL and Redis), `rule_files/`,
with `connecting/` shared by those that reach a server; the HTTP client, flag files and the
clock are modules of their own."""
