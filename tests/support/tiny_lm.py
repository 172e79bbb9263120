"""A tiny random causal LM (Llama family: GQA, RMSNorm, tied embeddings, like SmolLM2) with a byte-level BPE
tokenizer and a ChatML chat template, saved as a Hugging Face folder, built in the test: nothing is downloaded.

The weights are random, so what a test checks is wiring and numbers against torch, never fluency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support.tiny_models import WORDS

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LM_SHAPE = {"hidden": 32, "layers": 4, "heads": 4, "kv_heads": 2, "intermediate": 64}
CORPUS = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(0, len(WORDS), 3)] + [
    "What is the capital of France? Paris.", "def f(x):\n    return x + 1\n", "Hello, world! 123 456 789."]


def make_tiny_tokenizer(out: Path, vocab_size: int = 400, chat_template: bool = True) -> Any:
    """A byte-level BPE tokenizer (GPT-2 style, as SmolLM2's) trained on :data:`CORPUS`, saved in ``out``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(out)
    return tokenizer


def make_tiny_lm(out: Path, seed: int = 0, layers: int | None = None, family: str = "llama",
                 chat_template: bool = True, vocab_size: int | None = None, weight_scale: float = 1.0,
                 **shape: int) -> Path:
    """A tiny random causal LM of ``family`` (llama or qwen2) in ``out`` with :func:`make_tiny_tokenizer`'s tokenizer;
    ``vocab_size``: embedding rows (default: the tokenizer's; more gives padding rows, as Qwen ships).
    ``weight_scale``: every weight but the norms' multiplied by it; 6 makes greedy answers vary from token to token
    (at 1 a random model repeats one token), which a test of generation needs."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    tokenizer = make_tiny_tokenizer(out, chat_template=chat_template)
    dims = LM_SHAPE | shape
    config = AutoConfig.for_model(
        family, vocab_size=vocab_size or len(tokenizer), hidden_size=dims["hidden"],
        num_hidden_layers=layers or dims["layers"], num_attention_heads=dims["heads"],
        num_key_value_heads=dims["kv_heads"], intermediate_size=dims["intermediate"], max_position_embeddings=256,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if "norm" not in name:
                weight.mul_(weight_scale)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    return out


def genai_greedy(og: Any, folder: Path, prompt: list[int], new_tokens: int) -> list[int]:
    """The greedy answer onnxruntime-genai (module ``og``) generates from the model folder ``folder``."""
    import numpy as np

    model = og.Model(str(folder))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(prompt) + new_tokens, do_sample=False)
    generator = og.Generator(model, params)
    generator.append_tokens(np.array([prompt], dtype=np.int32))
    tokens = []
    while not generator.is_done():
        generator.generate_next_token()
        tokens.append(int(generator.get_next_tokens()[0]))
    return tokens
