"""People, their roles and their personal tokens."""
