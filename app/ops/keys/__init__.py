"""Key rotation: moving the stored personal data to the current keys."""
