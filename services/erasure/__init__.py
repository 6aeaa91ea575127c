"""Erasing one customer's data wherever this service keeps it (GDPR art. 17)."""
