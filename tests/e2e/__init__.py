"""End-to-end tests against real outside processes; conftest.py marks every test here `e2e`."""
