"""Continuous batching: many requests share each forward pass of one llama.cpp context.

llama-cpp-python's own server runs one request at a time behind a lock, so N clients get 1/N of
the speed each. Here one worker thread owns a context with ``parallel`` sequence slots; every
step it packs the next token of every running sequence plus chunks of newly admitted prompts
into a single ``llama_decode`` call. Where weights must be streamed from memory for every step
(any GPU, and CPUs with idle cores), a step for 8 sequences costs little more than one for 1,
which is where the aggregate throughput comes from; on a CPU already saturated by arithmetic the
gain shrinks towards 1x. Requests beyond the free
slots wait in a bounded queue; when that is full the caller is told to retry (HTTP 429).

Each slot has its own KV stream (``kv_unified=False``): attention then only spans a sequence's
own cells, always at the same cell offsets, so a batched sequence computes exactly what it would
alone. (With ``kv_unified=True``, measured: batched greedy text departs from the solo text within
the first tokens, coherent but different; the cells of all sequences interleave there, so the
attention sums most likely run in another order and round differently.) llama.cpp batches
sequences into one micro-batch only while their slot ids ascend by one in batch order. So the
batch is built in slot order, new requests take the lowest free slot, and when a sequence ends
below others the highest one is moved down into the gap.
One extra stream holds the chat template's preamble (the tokens every conversation without
its own system message starts with); a new sequence copies it instead of recomputing it.
A copy between streams moves the whole stream buffer (``context_length`` cells, about 3 ms for
the embedded model at 512), far less than the prefill it replaces or the extra forward pass per
step that a gap would cost. Longer prefixes (the conversation so far, a tool's fixed
instructions) come from the caller's own earlier requests, kept in host memory by
``serve.engine.prompt_cache``.
"""

from __future__ import annotations

import asyncio
import ctypes
import heapq
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

import llama_cpp

from serve.config import FlashAttention, KvCacheType
from serve.engine.llama_model import LoadedModel
from serve.engine.prompt_cache import PromptCache, restore
from serve.engine.sampling import (
    GrammarError,
    SamplingParams,
    build_sampler,
    free_sampler,
    pick_token,
)
from serve.engine.text import TextAssembler
from serve.errors import ApiError

FLASH_ATTENTION = {
    FlashAttention.auto: llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO,
    FlashAttention.on: llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED,
    FlashAttention.off: llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED,
}
KV_TYPES = {
    KvCacheType.f16: llama_cpp.GGML_TYPE_F16,
    KvCacheType.q8_0: llama_cpp.GGML_TYPE_Q8_0,
    KvCacheType.q4_0: llama_cpp.GGML_TYPE_Q4_0,
}

# Below this a stream copy saves too little prompt work to be worth its memory traffic.
MIN_SHARED_TOKENS = 4
# Ends whose KV cells are sound and worth keeping for the owner's next request.
CACHEABLE_ENDS = frozenset({"stop", "length", "cancelled"})


class EngineBusyError(ApiError):
    """Every slot is busy and the waiting queue is full."""

    status_code = 429
    error_type = "rate_limit_error"
    code = "queue_full"


class EngineStoppedError(ApiError):
    status_code = 503
    error_type = "server_error"
    code = "model_unavailable"


@dataclass(frozen=True)
class GenerationEvent:
    """A text delta; the last event of a generation also carries why and how much."""

    text: str
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    decode_seconds: float = 0.0
    cached_tokens: int = 0  # leading prompt tokens not computed for this request (shared or cached)


class Generation:
    """The caller's side of one request: an async stream of events and a way to stop it."""

    def __init__(self, prompt: list[int], params: SamplingParams, loop: asyncio.AbstractEventLoop,
                 cache_owner: str | None = None, whole_answer: bool = False) -> None:
        self.prompt = prompt
        self.params = params
        self.cache_owner = cache_owner
        self.whole_answer = whole_answer
        self._held: list[str] = []  # the worker's text so far, for a caller that reads only the end
        self._loop = loop
        self._events: asyncio.Queue[GenerationEvent] = asyncio.Queue()
        self._cancelled = threading.Event()
        self.generated = 0

    def cancel(self) -> None:
        """Called when the client goes away; the worker frees the slot at its next step."""
        self._cancelled.set()

    def stop(self, reason: str) -> None:
        """Cancel, and end the caller's stream now with ``reason`` rather than at the worker's next step.

        On the event loop's thread only. A queued generation would otherwise hear nothing until
        a slot frees; the worker's own final event then goes unread.
        """
        self._cancelled.set()
        self._events.put_nowait(GenerationEvent("", reason, len(self.prompt), self.generated))

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def emit(self, text: str) -> None:
        """From the worker thread: a text delta, passed on at once unless the caller wants only the end.

        Each event wakes the event loop's thread, which on a small CPU takes a core from the
        compute threads in the middle of a forward pass; a whole answer needs no wake-up per token.
        """
        if self.whole_answer:
            self._held.append(text)
        else:
            self.publish(GenerationEvent(text))

    def end(self, event: GenerationEvent) -> None:
        """From the worker thread: the last event, carrying any text held back."""
        if self._held:
            event = replace(event, text="".join(self._held) + event.text)
            self._held.clear()
        self.publish(event)

    def publish(self, event: GenerationEvent) -> None:
        """From the worker thread; a loop already closed (server shut down) has nobody to tell."""
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)
        except RuntimeError:
            self._cancelled.set()

    async def events(self) -> AsyncIterator[GenerationEvent]:
        while True:
            event = await self._events.get()
            yield event
            if event.finish_reason is not None:
                return


@dataclass
class _Sequence:
    slot: int
    generation: Generation
    sampler: llama_cpp.llama_sampler_p | None
    assembler: TextAssembler
    pending: list[int]
    tokens: list[int]  # what the slot's KV cells hold, in position order
    position: int = 0
    cached: int = 0  # leading prompt tokens taken from the preamble stream or the prompt cache
    generated: int = 0
    last_token: int = -1
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None


class BatchEngine:
    """Owns the llama.cpp context and the worker thread that drives it."""

    def __init__(
        self,
        model: LoadedModel,
        *,
        parallel: int,
        context_length: int,
        batch_tokens: int,
        threads: int,
        queue_size: int,
        shared_preamble: bool = True,
        prompt_cache_bytes: int = 0,
        flash_attention: FlashAttention = FlashAttention.auto,
        kv_cache_type: KvCacheType = KvCacheType.f16,
    ) -> None:
        self.model = model
        self.parallel = parallel
        self.context_length = context_length
        self.queue_size = queue_size
        self._batch_capacity = max(batch_tokens, parallel + 16)
        self._preamble_slot = parallel
        streams = parallel + 1 if shared_preamble else parallel
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = context_length * streams
        params.n_batch = self._batch_capacity
        params.n_ubatch = self._batch_capacity
        params.n_seq_max = streams
        params.n_threads = threads
        params.n_threads_batch = threads
        params.kv_unified = False
        params.no_perf = True
        params.flash_attn_type = FLASH_ATTENTION[flash_attention]
        params.type_k = params.type_v = KV_TYPES[kv_cache_type]
        self._ctx = llama_cpp.llama_init_from_model(model.handle, params)
        if not self._ctx:
            raise EngineStoppedError("could not create a llama.cpp context (out of memory?)")
        if model.adapter is not None:
            # llama-cpp-python annotates the adapter as c_void_p; its restype is the POINTER(c_void_p) this array holds
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(model.adapter)  # type: ignore[misc]
            scales = (ctypes.c_float * 1)(1.0)
            llama_cpp.llama_set_adapters_lora(self._ctx, adapters, 1, scales)
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(model.vocab)
        self._batch = llama_cpp.llama_batch_init(self._batch_capacity, 0, 1)
        self._piece_buffer = ctypes.create_string_buffer(256)
        self._shared_preamble = shared_preamble
        self._preamble: list[int] = []
        self._cache = PromptCache(prompt_cache_bytes) if prompt_cache_bytes > 0 else None
        self._waiting: deque[Generation] = deque()
        # A heap: new sequences take the lowest free slot, keeping running slots contiguous.
        self._free_slots = list(range(parallel))
        self._running: dict[int, _Sequence] = {}
        self._condition = threading.Condition()
        self._stopping = False
        self._aborting = False
        self._thread = threading.Thread(target=self._run, name="llama-batch-engine", daemon=True)
        self._thread.start()

    def _compute_preamble(self) -> list[int]:
        """Decode the template's preamble into its own stream once; [] when there is none worth sharing."""
        tokens = self.model.tokenize(self.model.chat_preamble(), special=True)[: self.context_length - 1]
        if len(tokens) < MIN_SHARED_TOKENS:
            return []
        batch = self._batch
        for index, token in enumerate(tokens[: self._batch_capacity]):
            batch.token[index] = token
            batch.pos[index] = index
            batch.n_seq_id[index] = 1
            batch.seq_id[index][0] = self._preamble_slot
            batch.logits[index] = False
        batch.n_tokens = min(len(tokens), self._batch_capacity)
        if llama_cpp.llama_decode(self._ctx, batch) != 0:
            llama_cpp.llama_memory_seq_rm(self._memory, self._preamble_slot, -1, -1)
            return []
        return tokens[: batch.n_tokens]

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    @property
    def active(self) -> int:
        return len(self._running)

    def submit(self, prompt: list[int], params: SamplingParams, cache_owner: str | None = None,
               whole_answer: bool = False) -> Generation:
        """``cache_owner`` (the caller's key id) lets this request reuse, and leave behind, cached
        prompt states that only the same owner can hit; None neither reads nor writes the cache.
        ``whole_answer``: the text comes in the last event only (the caller does not stream)."""
        generation = Generation(prompt, params, asyncio.get_running_loop(), cache_owner, whole_answer)
        with self._condition:
            if self._stopping:
                raise EngineStoppedError("the model is being unloaded; retry shortly")
            if len(self._waiting) >= len(self._free_slots) + self.queue_size:
                raise EngineBusyError("the server is at capacity; retry after the delay in Retry-After")
            self._waiting.append(generation)
            self._condition.notify()
        return generation

    def close(self, drain_seconds: float = 0.0) -> None:
        """Stop taking work, let running sequences finish for up to ``drain_seconds``, free memory."""
        deadline = time.monotonic() + drain_seconds
        with self._condition:
            self._stopping = True
            while (self._running or self._waiting) and time.monotonic() < deadline:
                self._condition.wait(timeout=0.05)
            self._aborting = True
            self._condition.notify_all()
        self._thread.join()
        if self._cache is not None:
            self._cache.clear()
        llama_cpp.llama_batch_free(self._batch)
        llama_cpp.llama_free(self._ctx)

    # --- worker thread -------------------------------------------------------------------

    def _run(self) -> None:
        # Every llama_decode runs on this thread. libgomp gives each thread that opens a parallel
        # region a team of its own; decoding the preamble on the loading thread instead cost 15-20%
        # per token on 2 cores (measured), presumably because libgomp stops spinning at barriers
        # once it manages more threads than there are cores.
        if self._shared_preamble:
            self._preamble = self._compute_preamble()
        while True:
            with self._condition:
                while not self._stopping and not self._waiting and not self._running:
                    self._condition.wait()
                if self._aborting or (self._stopping and not self._waiting and not self._running):
                    self._abort_all("server_shutdown")
                    self._condition.notify_all()
                    return
                self._admit()
            self._step()
            with self._condition:
                self._condition.notify_all()

    def _admit(self) -> None:
        while self._free_slots and self._waiting:
            generation = self._waiting.popleft()
            if generation.cancelled:
                generation.publish(GenerationEvent("", "cancelled", len(generation.prompt)))
                continue
            slot = heapq.heappop(self._free_slots)
            shared = self._shared_length(generation.prompt)
            owner = generation.cache_owner
            hit = self._cache.lookup(owner, generation.prompt, shared) if self._cache and owner else None
            if hit is not None and restore(hit, self._ctx, self._memory, slot):
                shared = hit.tokens
            elif shared:
                # Copies the whole preamble stream (applied at the next decode), then drops what differs.
                llama_cpp.llama_memory_seq_cp(self._memory, self._preamble_slot, slot, -1, -1)
                llama_cpp.llama_memory_seq_rm(self._memory, slot, shared, -1)
            try:
                sampler = build_sampler(generation.params, self.model.vocab)
            except GrammarError:
                heapq.heappush(self._free_slots, slot)
                llama_cpp.llama_memory_seq_rm(self._memory, slot, -1, -1)
                generation.publish(GenerationEvent("", "error", len(generation.prompt)))
                continue
            self._running[slot] = _Sequence(
                slot=slot,
                generation=generation,
                sampler=sampler,
                assembler=TextAssembler(generation.params.stop),
                pending=list(generation.prompt[shared:]),
                tokens=list(generation.prompt[:shared]),
                position=shared,
                cached=shared,
            )

    def _shared_length(self, prompt: list[int]) -> int:
        """Leading tokens the prompt has in common with the preamble, leaving at least one to decode."""
        limit = min(len(self._preamble), len(prompt) - 1)
        shared = 0
        while shared < limit and prompt[shared] == self._preamble[shared]:
            shared += 1
        return shared if shared >= MIN_SHARED_TOKENS else 0

    def _compact(self) -> None:
        """Move the highest running sequence into the lowest free slot below it until none is left."""
        while self._free_slots and self._running:
            top = max(self._running)
            low = self._free_slots[0]
            if low > top:
                return
            heapq.heapreplace(self._free_slots, top)
            sequence = self._running.pop(top)
            llama_cpp.llama_memory_seq_cp(self._memory, top, low, -1, -1)
            llama_cpp.llama_memory_seq_rm(self._memory, top, -1, -1)
            sequence.slot = low
            self._running[low] = sequence

    def _step(self) -> None:
        for sequence in [s for s in self._running.values() if s.generation.cancelled]:
            self._finish(sequence, "cancelled")
        if not self._running:
            return
        self._compact()
        # With one KV stream per slot, llama.cpp puts sequences into one micro-batch only while
        # their slot ids ascend by one in batch order; any other order costs a forward pass each.
        ordered = sorted(self._running.values(), key=lambda s: s.slot)
        room = self._batch_capacity - sum(1 for s in ordered if not s.pending)
        batch = self._batch
        count = 0
        outputs: list[tuple[_Sequence, int]] = []
        for sequence in ordered:
            if not sequence.pending:
                self._put(count, sequence.last_token, sequence, logits=True)
                outputs.append((sequence, count))
                count += 1
                continue
            if room <= 0:
                continue
            chunk, sequence.pending = sequence.pending[:room], sequence.pending[room:]
            room -= len(chunk)
            for offset, token in enumerate(chunk):
                last = offset == len(chunk) - 1 and not sequence.pending
                self._put(count, token, sequence, logits=last)
                if last:
                    outputs.append((sequence, count))
                count += 1
        batch.n_tokens = count
        if llama_cpp.llama_decode(self._ctx, batch) != 0:
            for sequence in list(self._running.values()):
                self._finish(sequence, "error")
            return
        for sequence, index in outputs:
            self._advance(sequence, pick_token(sequence.sampler, self._ctx, index, self._n_vocab))

    def _put(self, index: int, token: int, sequence: _Sequence, *, logits: bool) -> None:
        batch = self._batch
        batch.token[index] = token
        batch.pos[index] = sequence.position
        batch.n_seq_id[index] = 1
        batch.seq_id[index][0] = sequence.slot
        batch.logits[index] = logits
        sequence.position += 1
        sequence.tokens.append(token)

    def _advance(self, sequence: _Sequence, token: int) -> None:
        if sequence.first_token_at is None:
            sequence.first_token_at = time.perf_counter()
        if self.model.is_end(token):
            self._finish(sequence, "stop", sequence.assembler.flush())
            return
        sequence.generated += 1
        sequence.generation.generated = sequence.generated
        sequence.last_token = token
        text, stopped = sequence.assembler.feed(self.model.piece(token, self._piece_buffer))
        if stopped:
            self._finish(sequence, "stop", text)
        elif sequence.generated >= sequence.generation.params.max_tokens or sequence.position >= self.context_length:
            self._finish(sequence, "length", text + sequence.assembler.flush())
        elif text:
            sequence.generation.emit(text)

    def _finish(self, sequence: _Sequence, reason: str, text: str = "") -> None:
        elapsed = time.perf_counter() - (sequence.first_token_at or sequence.started)
        generation = sequence.generation
        if self._cache is not None and generation.cache_owner and reason in CACHEABLE_ENDS:
            # Before the end is told: a follow-up sent the moment the answer arrives finds it.
            self._cache.store(generation.cache_owner, sequence.tokens, self._ctx, self._memory, sequence.slot)
        generation.end(
            GenerationEvent(
                text,
                reason,
                prompt_tokens=len(generation.prompt),
                completion_tokens=sequence.generated,
                decode_seconds=elapsed,
                cached_tokens=sequence.cached,
            )
        )
        llama_cpp.llama_memory_seq_rm(self._memory, sequence.slot, -1, -1)
        free_sampler(sequence.sampler)
        del self._running[sequence.slot]
        heapq.heappush(self._free_slots, sequence.slot)

    def _abort_all(self, reason: str) -> None:
        for sequence in list(self._running.values()):
            self._finish(sequence, reason)
        while self._waiting:
            generation = self._waiting.popleft()
            generation.publish(GenerationEvent("", reason, len(generation.prompt)))
