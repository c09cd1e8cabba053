"""A tiny llama-architecture model made on the fly, so tests never download anything.

Two layers, hidden size 256 (a multiple of 256 so real K-quants apply), grouped-query
attention (4 query heads, 2 key/value heads, which exercises the per-head permutation that
GGUF conversion needs), and a byte-level BPE tokenizer trained here with a ChatML template.
"""

from __future__ import annotations

from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CORPUS = [
    "The patient was admitted with chest pain and shortness of breath.",
    "Metformin 500 mg twice daily was continued for type 2 diabetes.",
    "Blood pressure 128/84, heart rate 72, temperature 37.1 C.",
    "Assessment: community acquired pneumonia. Plan: start amoxicillin.",
    "What are the symptoms of asthma? Wheezing, cough and chest tightness.",
    "Hypertension is treated with lifestyle changes and medication.",
    "The wound was cleaned and dressed; follow up in two weeks.",
    "Question: Is aspirin recommended? Answer: yes, for secondary prevention.",
]


def build_tokenizer(directory: Path, vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    fast.chat_template = CHATML_TEMPLATE
    fast.save_pretrained(directory)
    return fast


def build_tiny_llama(directory: Path, seed: int = 0) -> Path:
    """Write a tiny random llama with its tokenizer into ``directory`` (safetensors)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(directory)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(directory)
    return directory


def fit_to_text(source: Path, target: Path, text: str, steps: int = 60) -> Path:
    """A copy of the model at ``source`` overfitted to ``text``: it then predicts that text near-certainly.

    Tests use it for what a privacy failure looks like (a memorized canary) and for a model so
    sure of its held-out text that coarse quantization visibly hurts it.
    """
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    shutil.copytree(source, target)
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(target), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(target), local_files_only=True, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only fight over the shared cores
    try:
        for _ in range(steps):
            model(input_ids=ids, labels=ids).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(target)
    return target
