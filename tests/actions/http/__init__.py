"""Tests of responder/actions/http: `http.request` and `http.probe`."""
