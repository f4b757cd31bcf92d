"""Outlets: the registry and its CSV import."""
