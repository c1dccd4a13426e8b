"""Tests of responder/actions: each family against a real client and a local fake of its API."""
