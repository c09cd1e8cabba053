"""The clinicians' chat page, served entirely from this package (no CDN, no external font)."""
