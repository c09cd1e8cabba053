"""OpenAI-compatible text completions (a raw prompt in, no chat template)."""
