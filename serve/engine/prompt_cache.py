"""KV states of finished requests, kept in host memory so a later prompt that starts the same way
skips recomputing that start.

A follow-up question resends the whole conversation, a retry resends the same prompt, and a
hospital tool sends the same instructions every time: their prompt prefill is work the engine
already did. When a sequence ends, its slot's KV cells are copied out (``llama_state_seq_get_data``)
with the tokens they hold; a new request restores the entry sharing the longest prefix with its
prompt into its slot and decodes only the rest. llama.cpp's own server keeps such a cache too.

Entries are scoped to the API key that produced them: only the same key can ever hit them. A
shared cache would let one caller time another's prompts (a hit answers measurably faster), and
prompts carry clinical text. The cache lives in this process's memory only, never on disk, and is
bounded in bytes, least recently used first out.

Only the engine's worker thread touches it, so it needs no lock.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import llama_cpp

# Restoring a state costs a copy of all its cells; below this many reused tokens the prefill it
# saves is about as cheap.
MIN_REUSED_TOKENS = 8


@dataclass(frozen=True)
class CacheHit:
    tokens: int  # leading prompt tokens the restored state holds
    state: ctypes.Array[ctypes.c_uint8]


@dataclass
class _Entry:
    owner: str
    tokens: tuple[int, ...]
    state: ctypes.Array[ctypes.c_uint8]


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    size = min(len(a), len(b))
    index = 0
    while index < size and a[index] == b[index]:
        index += 1
    return index


class PromptCache:
    """Per-owner KV states by token prefix, within ``budget_bytes`` of host memory."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self.used_bytes = 0
        self._entries: OrderedDict[int, _Entry] = OrderedDict()  # oldest use first
        self._next_id = 0

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, owner: str, prompt: Sequence[int], at_least: int) -> CacheHit | None:
        """The entry of ``owner`` sharing the longest prefix with ``prompt``, if it beats ``at_least``.

        One token of the prompt is always left to decode: its logits start the answer.
        """
        limit = len(prompt) - 1
        best_id, best = None, max(at_least, MIN_REUSED_TOKENS - 1)
        for entry_id, entry in self._entries.items():
            if entry.owner != owner or not entry.tokens or entry.tokens[0] != prompt[0]:
                continue
            shared = min(common_prefix(entry.tokens, prompt), limit)
            if shared > best:
                best_id, best = entry_id, shared
        if best_id is None:
            return None
        self._entries.move_to_end(best_id)
        return CacheHit(best, self._entries[best_id].state)

    def store(self, owner: str, tokens: Sequence[int], ctx: llama_cpp.llama_context_p,
              memory: llama_cpp.llama_memory_t, seq_id: int) -> bool:
        """Copy sequence ``seq_id``'s cells, which hold ``tokens``, out of the context.

        Nothing is kept unless the cells end where ``tokens`` does: a stream copy llama.cpp has
        queued but not yet applied (a request cancelled before its first step) holds nothing yet.
        """
        if len(tokens) < MIN_REUSED_TOKENS or llama_cpp.llama_memory_seq_pos_max(memory, seq_id) != len(tokens) - 1:
            return False
        size = int(llama_cpp.llama_state_seq_get_size(ctx, seq_id))
        if size <= 0 or size > self.budget_bytes:
            return False
        stored = tuple(tokens)
        for entry_id, entry in list(self._entries.items()):
            # An entry this one extends can only ever lose to it.
            if entry.owner == owner and len(entry.tokens) <= len(stored) and stored[: len(entry.tokens)] == entry.tokens:
                self._drop(entry_id)
        while self._entries and self.used_bytes + size > self.budget_bytes:
            self._drop(next(iter(self._entries)))
        state = (ctypes.c_uint8 * size)()
        if int(llama_cpp.llama_state_seq_get_data(ctx, state, size, seq_id)) != size:
            return False
        self._entries[self._next_id] = _Entry(owner, stored, state)
        self._next_id += 1
        self.used_bytes += size
        return True

    def clear(self) -> None:
        self._entries.clear()
        self.used_bytes = 0

    def _drop(self, entry_id: int) -> None:
        entry = self._entries.pop(entry_id)
        self.used_bytes -= len(entry.state)


def restore(hit: CacheHit, ctx: llama_cpp.llama_context_p, memory: llama_cpp.llama_memory_t, seq_id: int) -> bool:
    """Load ``hit`` into the (empty) sequence ``seq_id`` and keep only its shared prefix."""
    read = int(llama_cpp.llama_state_seq_set_data(ctx, hit.state, len(hit.state), seq_id))
    if read != len(hit.state):
        llama_cpp.llama_memory_seq_rm(memory, seq_id, -1, -1)
        return False
    llama_cpp.llama_memory_seq_rm(memory, seq_id, hit.tokens, -1)
    return True
