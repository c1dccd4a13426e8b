"""Tests of responder/web over real HTTP: webhooks, the operator API, access control, the UI."""
