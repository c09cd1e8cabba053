"""The seam between answering and the knowledge base (built by ``appliance.kb.grounding``).

Endpoints only know these protocols; ``create_app`` is handed a grounding object when a
knowledge base has been built, and ``None`` otherwise, so nothing in ``serve`` imports retrieval code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from serve.knowledge.protocol import Passage


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

    def close(self) -> None:
        """Release the index and the embedder when the API stops."""
        ...


@runtime_checkable
class PassageSource(Protocol):
    """A grounding that can also serve the full text behind a citation (``/v1/knowledge/passages``)."""

    def passage(self, chunk_id: str) -> Passage | None:
        """Blocking: the stored passage with this id, or None."""
        ...
