"""Probes: the only code that touches the system; each records raw facts (and unknowns with reasons)."""
