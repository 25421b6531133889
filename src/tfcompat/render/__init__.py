"""Renderers: Report -> str. Only the CLI prints."""
