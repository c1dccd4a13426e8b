"""Tests of responder/adapters: the IO behind the ports, against real servers and local fakes."""
