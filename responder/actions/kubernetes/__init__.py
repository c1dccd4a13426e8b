"""The Kubernetes family: the `k8s.*` actions (rollout, scale, pods, logs, events, delete)."""
