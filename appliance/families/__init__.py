"""Model families: one registry of what training and export know about each decoder family."""
