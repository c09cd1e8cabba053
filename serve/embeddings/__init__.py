"""OpenAI-compatible embeddings with the knowledge base's embedding model."""
