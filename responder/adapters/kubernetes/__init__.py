"""The KubeApi port over the official `kubernetes` client: calls, clients, models, errors."""
