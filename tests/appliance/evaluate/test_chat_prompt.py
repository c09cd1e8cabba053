"""Questions are asked through the model's own chat template, identically on both back-ends."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from appliance.export.runners import (
    LlamaCppRunner,
    TransformersRunner,
    question_ids,
    raw_question_prompt,
    strip_end,
)

QUESTION = "What are the symptoms of asthma?"


@pytest.fixture(scope="module")
def hf_runner(tiny_hf_model: Path) -> TransformersRunner:
    return TransformersRunner(tiny_hf_model, context_length=128)


@pytest.fixture(scope="module")
def untemplated_hf_model(tiny_hf_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model as a base model ships: the same tokenizer with no chat template."""
    directory = tmp_path_factory.mktemp("no-template") / "hf"
    shutil.copytree(tiny_hf_model, directory)
    config_file = directory / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config.pop("chat_template", None)
    config_file.write_text(json.dumps(config))
    for template_file in (*directory.glob("chat_template.*"), *directory.glob("additional_chat_templates")):
        shutil.rmtree(template_file) if template_file.is_dir() else template_file.unlink()
    return directory


def test_both_backends_render_the_template_as_transformers_does(
    tiny_hf_model: Path, tiny_ggufs: dict[str, Path], hf_runner: TransformersRunner
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_hf_model), local_files_only=True)
    expected = tokenizer.apply_chat_template(
        [{"role": "user", "content": QUESTION}], tokenize=False, add_generation_prompt=True
    )
    assert expected.startswith("<|im_start|>user\n") and expected.endswith("<|im_start|>assistant\n")
    gguf = LlamaCppRunner(tiny_ggufs["f32"], context_length=128, threads=1)
    try:
        assert hf_runner.format_question(QUESTION) == expected
        assert gguf.format_question(QUESTION) == expected
        # The template's markers are single special tokens on both back-ends, and no BOS is added twice.
        start, end = tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>"])
        ids = question_ids(gguf, QUESTION)
        assert ids == question_ids(hf_runner, QUESTION) == tokenizer(expected, add_special_tokens=False)["input_ids"]
        assert ids.count(start) == 2 and ids.count(end) == 1
        assert end in gguf.end_ids and end in hf_runner.end_ids
    finally:
        gguf.close()


def test_a_model_without_template_gets_the_raw_prompt(untemplated_hf_model: Path) -> None:
    runner = TransformersRunner(untemplated_hf_model, context_length=128)
    try:
        assert runner.chat_template is None
        assert runner.format_question(QUESTION) == raw_question_prompt(QUESTION) == f"Question: {QUESTION}\nAnswer:"
        assert question_ids(runner, QUESTION) == runner.tokenize(raw_question_prompt(QUESTION))
    finally:
        runner.close()


def test_embedded_instruct_model_answers_a_chat_question() -> None:
    """SmolLM2-Instruct ends its turn at once on a raw prompt; asked through its template it answers."""
    from serve.engine.gguf_file import embedded_model_path

    runner = LlamaCppRunner(embedded_model_path(), context_length=256, threads=2)
    try:
        assert runner.chat_template is not None
        prompt = runner.format_question(QUESTION)
        assert prompt.endswith("<|im_start|>user\nWhat are the symptoms of asthma?<|im_end|>\n<|im_start|>assistant\n")
        answer = runner.detokenize(strip_end(runner, runner.greedy(question_ids(runner, QUESTION), 16))).strip()
        assert len(answer.split()) >= 3
        assert "<|im_" not in answer
    finally:
        runner.close()
