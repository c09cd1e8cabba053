"""The seam between answering and the knowledge base (built in ``serve.knowledge``).

Endpoints only know this protocol; ``create_app`` passes a grounding object in when a
knowledge base has been built, and ``None`` otherwise, so nothing here imports retrieval code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class GroundedPrompt:
    messages: list[dict[str, str]]
    citations: list[dict[str, object]] = field(default_factory=list)


class Grounding(Protocol):
    def ground(self, question: str, messages: list[dict[str, str]]) -> GroundedPrompt:
        """Blocking: retrieve passages for ``question`` and rewrite ``messages`` to cite them."""
        ...
