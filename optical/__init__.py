"""physnn.optical backend (see README)."""
