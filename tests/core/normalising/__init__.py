"""Tests of responder/core/normalising: webhook bodies (captured and built) to Delivery/Alert."""
