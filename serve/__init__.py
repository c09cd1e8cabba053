"""The consultation API: OpenAI-compatible, authenticated, audited, served by llama.cpp."""
