"""On-premises medical LLM appliance: orchestrates de-identification, training, export and serving."""

__version__ = "0.1.0"
