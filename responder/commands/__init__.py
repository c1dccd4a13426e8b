"""The implementation of each CLI subcommand (wiring adapters, engine and web together)."""
