"""Tests of responder/actions/kubernetes: `k8s.*` against the fake Kubernetes API server."""
