"""Clinical PHI recognizers for Presidio, one per module, assembled by ``recognizer_registry``."""
