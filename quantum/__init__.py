"""physnn.quantum backend (see README)."""
