"""Generation by an OpenAI-compatible engine on loopback (vLLM, llama.cpp's server), behind the appliance."""
