"""llama.cpp underneath the API: one model in memory, many sequences decoded together."""
