"""Shared fakes and helpers of the tests (no tests here), one module per job:

- `apps`: the in-process app's tokens, headers, settings and factory type;
- `operator_api`: the operator API client (/v1/runs, /v1/approvals) and its waits;
- `polling`: `eventually` / `wait_for`, the one polling loop;
- `recording`: the HTTP recorders (a test server's received requests, an action's sent ones);
- `targets`: a recording HTTP target on 127.0.0.1;
- `action_contexts`: ActionContexts over the real HttpApi, for action tests against fakes;
- `clock`: `FakeClock` for the Clock port;
- `fake_actions`: the `test.contain` containment action;
- `daemons`: `responder serve` as a real process;
- `loopback`: free ports on 127.0.0.1.
"""
