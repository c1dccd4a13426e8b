"""Tests of responder/actions/feature_flags: `feature_flag.*`, one module per provider."""
