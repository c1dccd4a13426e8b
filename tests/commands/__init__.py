"""Tests of responder/commands: the CLI as a user runs it, in-process and as subprocesses."""
