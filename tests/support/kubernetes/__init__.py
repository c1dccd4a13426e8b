"""The fake Kubernetes API server (aiohttp on 127.0.0.1) and its fixtures, for the k8s.* tests."""
