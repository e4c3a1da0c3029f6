"""physnn.pim backend (see README)."""
