"""The machinery every pipeline stage shares: work directory, manifests, skip-if-unchanged."""
