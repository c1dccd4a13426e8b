"""Action kinds (one module per target family), written against ports; see registry."""
