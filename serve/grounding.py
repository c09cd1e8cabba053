"""The seam between answering and the knowledge base (built in ``serve.knowledge``).

Endpoints only know this protocol; ``create_app`` passes a grounding object in when a
knowledge base has been built, and ``None`` otherwise, so nothing here imports retrieval code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class GroundedPrompt:
    """``notice`` is set when the knowledge base holds nothing relevant: the endpoint puts it in the
    answer itself, because a small model does not reliably follow the instruction to say so."""

    messages: list[dict[str, str]]
    citations: list[dict[str, object]] = field(default_factory=list)
    notice: str | None = None


def with_notice(answer: str, notice: str | None) -> str:
    """The answer led by ``notice`` unless the model already said it."""
    if notice is None or notice in answer:
        return answer
    return f"{notice}\n\n{answer}" if answer else notice


class Grounding(Protocol):
    def ground(self, question: str, messages: list[dict[str, str]]) -> GroundedPrompt:
        """Blocking: retrieve passages for ``question`` and rewrite ``messages`` to cite them."""
        ...

    def warm(self) -> None:
        """Blocking: load whatever the first ``ground`` would otherwise load (index, embedder)."""
        ...

    @property
    def ready(self) -> bool:
        """Whether ``warm`` has finished, so ``/readyz`` can tell."""
        ...
