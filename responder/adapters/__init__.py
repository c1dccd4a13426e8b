"""The only IO: stores, coordinators, HTTP client, rule files."""
