"""The prompt cache on the embedded model: a key's repeated or continued prompt skips the work it
already paid for, gives the same greedy answer, and nothing carries over to another key."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from serve.engine.gguf_file import embedded_model_path
from serve.engine.llama_model import LoadedModel
from serve.engine.prompt_cache import MIN_REUSED_TOKENS, PromptCache
from serve.engine.sampling import SamplingParams
from serve.engine.scheduler import BatchEngine, GenerationEvent

QUESTIONS = ["Name one symptom of anemia.", "What organ produces insulin?", "Define tachycardia briefly."]
TOKENS = 10


@pytest.fixture(scope="module")
def model() -> Iterator[LoadedModel]:
    loaded = LoadedModel.load(embedded_model_path())
    yield loaded
    loaded.close()


def _engine(model: LoadedModel, cache_bytes: int) -> BatchEngine:
    return BatchEngine(model, parallel=2, context_length=256, batch_tokens=128, threads=1, queue_size=8,
                       prompt_cache_bytes=cache_bytes)


async def _events(engine: BatchEngine, prompt: list[int], owner: str | None, *, whole: bool = False
                  ) -> list[GenerationEvent]:
    generation = engine.submit(prompt, SamplingParams(max_tokens=TOKENS, temperature=0.0), cache_owner=owner,
                               whole_answer=whole)
    return [event async for event in generation.events()]


def _text(events: list[GenerationEvent]) -> str:
    return "".join(event.text for event in events)


def test_a_key_reuses_its_own_prompts_and_answers_the_same(model: LoadedModel) -> None:
    prompt = model.tokenize_chat([{"role": "user", "content": QUESTIONS[0]}])
    preamble = len(model.tokenize(model.chat_preamble(), special=True))

    async def run() -> None:
        plain, cached = _engine(model, 0), _engine(model, 64 * 2**20)
        try:
            reference = _text(await _events(plain, prompt, "a"))
            first = await _events(cached, prompt, "a")
            again = await _events(cached, prompt, "a")
            other_key = await _events(cached, prompt, "b")
            anonymous = await _events(cached, prompt, None)
            assert _text(first) == _text(again) == _text(other_key) == reference
            # Only the template's preamble is shared the first time, and with any other caller.
            assert first[-1].cached_tokens == other_key[-1].cached_tokens == anonymous[-1].cached_tokens == preamble
            assert again[-1].cached_tokens == len(prompt) - 1  # one token is always decoded for its logits

            # A follow-up resends the conversation: the earlier answer's cells are reused too.
            follow_up = model.tokenize_chat([
                {"role": "user", "content": QUESTIONS[0]}, {"role": "assistant", "content": reference},
                {"role": "user", "content": QUESTIONS[1]},
            ])
            continued = await _events(cached, follow_up, "a")
            assert continued[-1].cached_tokens > len(prompt)
            assert continued[-1].finish_reason in ("stop", "length") and _text(continued)
        finally:
            plain.close()
            cached.close()

    asyncio.run(run())


def test_whole_answers_arrive_in_one_event_with_the_streamed_text(model: LoadedModel) -> None:
    prompt = model.tokenize_chat([{"role": "user", "content": QUESTIONS[2]}])

    async def run() -> None:
        engine = _engine(model, 0)
        try:
            streamed = await _events(engine, prompt, None)
            whole = await _events(engine, prompt, None, whole=True)
        finally:
            engine.close()
        assert len(streamed) > 2 and len(whole) == 1
        assert whole[0].text == _text(streamed) and whole[0].finish_reason == streamed[-1].finish_reason

    asyncio.run(run())


def test_the_cache_keeps_to_its_budget_and_stores_only_what_the_cells_hold(model: LoadedModel) -> None:
    prompts = [model.tokenize_chat([{"role": "user", "content": q}]) for q in QUESTIONS]
    preamble = len(model.tokenize(model.chat_preamble(), special=True))
    assert preamble >= MIN_REUSED_TOKENS  # the preamble stream is used, not the cache, for what all share

    async def measure() -> int:
        engine = _engine(model, 64 * 2**20)
        try:
            await _events(engine, prompts[0], "a")
            assert engine._cache is not None and len(engine._cache) == 1
            return engine._cache.used_bytes
        finally:
            engine.close()

    one_entry = asyncio.run(measure())

    async def run() -> None:
        engine = _engine(model, int(one_entry * 1.5))  # room for one state of this size, not two
        try:
            for prompt in prompts:
                await _events(engine, prompt, "a")
                cache = engine._cache
                assert cache is not None and len(cache) == 1 and cache.used_bytes <= cache.budget_bytes
            # The newest stayed: asking it again reuses it, an evicted one gets only the preamble.
            assert (await _events(engine, prompts[-1], "a"))[-1].cached_tokens == len(prompts[-1]) - 1
            assert (await _events(engine, prompts[0], "a"))[-1].cached_tokens == preamble
        finally:
            engine.close()

    asyncio.run(run())


def test_a_claim_the_cells_do_not_back_is_refused(model: LoadedModel) -> None:
    prompt = model.tokenize_chat([{"role": "user", "content": QUESTIONS[1]}])

    async def run() -> None:
        engine = _engine(model, 64 * 2**20)
        try:
            await _events(engine, prompt, "a")
            cache = PromptCache(64 * 2**20)
            # Slot 1 is empty (the request above ran in slot 0 and was cleared): nothing to keep.
            assert not cache.store("a", prompt, engine._ctx, engine._memory, 1)
            assert len(cache) == 0 and cache.lookup("a", prompt, 0) is None
        finally:
            engine.close()

    asyncio.run(run())
