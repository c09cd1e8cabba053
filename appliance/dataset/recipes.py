"""Turn documents, patient facts and dialogues into training examples, and mix them.

An example is either ``text`` (continued pretraining: the trainer packs these into full
context windows) or ``chat`` (supervised: the trainer applies the model's chat template and
learns only the assistant turns). Sizes here are in characters, estimated from the context
length with a conservative characters-per-token ratio; the trainer checks real token counts.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import asdict, dataclass
from typing import Any

from appliance.dataset.config import DatasetConfig, RecipeMix
from appliance.dataset.qa import Dialogue
from appliance.dataset.sources import Corpus

RECIPES = ("pretrain", "record_instructions", "qa", "replay")
_PLAN_HEADING = re.compile(
    r"^[#\s]*(assessment\s*(?:and|&|/)\s*plan|assessment|impression\s*(?:and|&)\s*plan|a/p)\s*:?\s*",
    re.IGNORECASE | re.MULTILINE,
)
_NEXT_HEADING = re.compile(r"^#\s+\S", re.MULTILINE)
TREATED_FOR = "What is this patient being treated for?"
SUMMARY_INSTRUCTION = "Summarize the assessment and plan for this clinical note."


@dataclass
class Example:
    recipe: str
    group: str
    kind: str  # "text" or "chat"
    text: str | None = None
    messages: list[dict[str, str]] | None = None
    document: str | None = None  # the source record ("file#line") for notes; ties it to the ledger

    def content(self) -> str:
        """The learnable text, for duplicate detection, length filters and the PHI re-scan."""
        if self.text is not None:
            return self.text
        return "\n".join(m["content"] for m in self.messages or [])

    def sha256(self) -> str:
        payload = {"kind": self.kind, "text": self.text, "messages": self.messages}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def record(self) -> dict[str, Any]:
        data = {key: value for key, value in asdict(self).items() if value is not None}
        data["sha256"] = self.sha256()
        return data


def max_chars(config: DatasetConfig) -> int:
    return int(config.context_length * config.chars_per_token)


def chunk_text(text: str, limit: int) -> list[str]:
    """Split at paragraph, then line, then word boundaries so every chunk is at most ``limit``."""
    chunks: list[str] = []
    current = ""
    for piece in _pieces(text.strip(), limit):
        joined = f"{current}\n{piece}" if current else piece
        if len(joined) <= limit:
            current = joined
        else:
            if current:
                chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def clip_words(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a blank: a half word teaches the model nothing and, to
    the PHI gate's re-scan, looks like an unknown proper noun ("No Known Alle")."""
    if len(text) <= limit:
        return text
    cut = max(text.rfind(" ", 0, limit + 1), text.rfind("\n", 0, limit + 1))
    return text[:cut].rstrip() if cut > 0 else text[:limit]


def _pieces(text: str, limit: int) -> list[str]:
    pieces: list[str] = []
    for line in text.splitlines():
        line = line.rstrip()
        if not line:
            continue
        while len(line) > limit:
            cut = line.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            pieces.append(line[:cut].rstrip())
            line = line[cut:].lstrip()
        if line:
            pieces.append(line)
    return pieces


def pretrain_examples(corpus: Corpus, config: DatasetConfig) -> list[Example]:
    limit = max_chars(config)
    return [
        Example("pretrain", doc.group, "text", text=chunk, document=doc.key)
        for doc in corpus.documents
        for chunk in chunk_text(doc.text, limit)
    ]


def split_assessment_plan(note: str) -> tuple[str, str] | None:
    """(note without its assessment and plan, the assessment and plan), or None if absent."""
    match = _PLAN_HEADING.search(note)
    if not match:
        return None
    rest = note[match.end() :]
    following = _NEXT_HEADING.search(rest)
    plan = (rest[: following.start()] if following else rest).strip()
    before = note[: match.start()].strip()
    if len(plan) < 10 or len(before) < 20:
        return None
    return before, plan


def _listing(items: list[str]) -> str:
    unique = list(dict.fromkeys(item.strip() for item in items if item.strip()))
    return "\n".join(f"- {item}" for item in unique)


def record_instruction_examples(corpus: Corpus, config: DatasetConfig) -> list[Example]:
    limit = max_chars(config)
    examples: list[Example] = []
    for group, facts in sorted(corpus.facts.items()):
        if facts.conditions and facts.medications:
            prompt = f"Medications on record:\n{_listing(facts.medications)}\n\n{TREATED_FOR}"
            answer = f"The record lists these conditions:\n{_listing(facts.conditions)}"
        elif facts.conditions:
            prompt, answer = TREATED_FOR, f"The record lists these conditions:\n{_listing(facts.conditions)}"
        else:
            continue
        examples.append(_chat("record_instructions", group, clip_words(prompt, limit // 2), clip_words(answer, limit // 2)))
    for doc in corpus.documents:
        parts = split_assessment_plan(doc.text)
        if parts is None:
            continue
        body, plan = parts
        plan = clip_words(plan, limit // 3)
        body = clip_words(body, max(0, limit - len(plan) - len(SUMMARY_INSTRUCTION) - 8))
        example = _chat("record_instructions", doc.group, f"{SUMMARY_INSTRUCTION}\n\n{body}", plan)
        example.document = doc.key
        examples.append(example)
    return examples


def _chat(recipe: str, group: str, prompt: str, answer: str) -> Example:
    return Example(
        recipe, group, "chat",
        messages=[{"role": "user", "content": prompt.strip()}, {"role": "assistant", "content": answer.strip()}],
    )


def dialogue_examples(dialogues: list[Dialogue], recipe: str) -> list[Example]:
    return [Example(recipe, d.group, "chat", messages=d.messages) for d in dialogues]


def mix(pools: dict[str, list[Example]], weights: RecipeMix, rng: random.Random) -> tuple[list[Example], dict[str, int]]:
    """Draw from each recipe in proportion to its weight.

    The scale is the largest total at which every weighted recipe with data can supply its
    share; replay is then added as a share of that total. Recipes without data are skipped,
    so a corpus with no notes still yields a Q&A set.
    """
    main = {name: pools.get(name, []) for name in RECIPES if name != "replay"}
    active = {name: pool for name, pool in main.items() if pool and getattr(weights, name) > 0}
    chosen: list[Example] = []
    taken: dict[str, int] = dict.fromkeys(RECIPES, 0)
    if active:
        total_weight = sum(getattr(weights, name) for name in active)
        scale = min(len(pool) * total_weight / getattr(weights, name) for name, pool in active.items())
        for name, pool in active.items():
            count = min(len(pool), max(1, round(scale * getattr(weights, name) / total_weight)))
            chosen.extend(rng.sample(pool, count))
            taken[name] = count
    replay = pools.get("replay", [])
    if replay and weights.replay > 0 and chosen:
        count = min(len(replay), max(1, round(len(chosen) * weights.replay)))
        chosen.extend(rng.sample(replay, count))
        taken["replay"] = count
    return chosen, taken
