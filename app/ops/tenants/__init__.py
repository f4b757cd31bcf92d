"""Tenants (HRSS departments): the tree, its files, and department settings."""
