"""Grounding consultations in the hospital's approved knowledge base, with citations."""
