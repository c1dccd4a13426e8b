"""responder: an alert-driven automated responder daemon (Alertmanager, Grafana, Sentry in)."""

__version__ = "0.1.0"
