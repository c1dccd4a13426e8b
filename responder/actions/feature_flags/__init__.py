"""The feature-flag family: `feature_flag.disable`/`enable`, one module per provider."""
