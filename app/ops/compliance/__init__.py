"""The compliance plane: the audit trail verified, signed, exported and archived; who could do what, when."""
