"""The aiohttp application: webhooks, runs API, probes, metrics."""
