"""PHI detection: Presidio's analyzer with the appliance's clinical recognizers."""
