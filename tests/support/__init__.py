"""Shared fakes and helpers of the tests (no tests here), one module per job:

- `apps`: the in-process app's tokens, headers, settings and factory type;
- `operator_api`: the operator API client (/v1/runs, /v1/approvals) and its waits;
- `polling`: `eventually` / `wait_for`, the one polling loop;
- `recording`: the HTTP recorders (a test server's received requests, an action's sent ones);
- `targets`: a recording HTTP target on 127.0.0.1, and a rule that contains per instance;
- `action_contexts`: ActionContexts over the real HttpApi, for action tests against fakes;
- `clock`: `FakeClock` for the Clock port;
- `fake_actions`: the `test.contain` containment action;
- `daemons`: `responder serve` as a real process;
- `loopback`: free ports on 127.0.0.1;
- `paths`: the repository's root (`REPO`), for tests that read its files;
- `records`: sample alerts, deliveries, runs and approvals around one instant `T0`;
- `payload_builders`: Alertmanager webhook bodies built in tests;
- `conformance`: the captured webhook bodies of examples/payloads, byte for byte;
- `postgres_service`, `redis_service`: real servers (found or started) and their fixtures;
- `postgres_roles`: throwaway owner and runtime PostgreSQL roles on a schema of their own;
- `tcp_proxy`: a loopback TCP proxy to cut and restore (a network partition);
- `alertmanager_service`, `unleash_service`: real Alertmanager/Prometheus and Unleash, for e2e;
- `kubernetes/`: the fake Kubernetes API server (`server`, `handlers`, `objects`,
  `discovery`) and its fixtures (`fixtures`).
"""
