"""Synthetic demo data: outlets and cards, and a partner's quick start."""
