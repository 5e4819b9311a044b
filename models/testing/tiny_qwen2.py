"""A tiny random-weight Qwen2 causal language model (the packaged answerer's and reranker's architecture)."""

from __future__ import annotations

from pathlib import Path

from models.base import quiet_transformers
from models.testing.tiny_qwen_vl import CHAT_TEMPLATE
from models.testing.tokenizer import train_tokenizer

__all__ = ["make_tiny_qwen2"]

SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def make_tiny_qwen2(outdir: Path, name: str = "qwen2.5") -> Path:
    """Write a tiny random Qwen2ForCausalLM, its tokenizer and the Qwen chat template to ``outdir/name``."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    quiet_transformers()
    target = Path(outdir) / name
    target.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(SPECIAL, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    missing = [w for w in ("yes", "no") if w not in tokenizer.get_vocab()]  # the reranker's single tokens
    if missing:
        tokenizer.add_tokens(missing)
    tokenizer.chat_template = CHAT_TEMPLATE
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL}
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).eval().save_pretrained(target)  # safetensors
    tokenizer.save_pretrained(target)
    return target
