"""API keys, roles and the per-key request budget."""
