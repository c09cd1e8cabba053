"""The served model: listing it, loading it, reloading it."""
