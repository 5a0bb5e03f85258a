"""Policy settings: the tunable numbers of SPEC 2 with their defaults."""
