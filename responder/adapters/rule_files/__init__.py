"""Rule files: YAML read with the line of every key, and the rule set loaded from them."""
