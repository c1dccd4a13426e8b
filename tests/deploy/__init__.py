"""Tests of what ships beside the package: deploy/k8s, the container image, the rule pack."""
