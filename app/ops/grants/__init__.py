"""Grants: granting, approval, bulk grants and ceilings."""
