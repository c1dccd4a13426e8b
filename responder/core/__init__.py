"""Pure functions over frozen models: matching, templating, planning, state transitions."""
