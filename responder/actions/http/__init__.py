"""The HTTP family: `http.request` (one call, any method) and `http.probe` (a health check)."""
