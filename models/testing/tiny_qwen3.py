"""Tiny random-weight Qwen3 models (the real transformers classes) for the embedder and reranker tests."""

from __future__ import annotations

from pathlib import Path

from models.base import quiet_transformers
from models.testing.tokenizer import train_tokenizer

__all__ = ["make_tiny_qwen3_embedding", "make_tiny_qwen3_reranker", "QWEN3_SPECIAL_TOKENS"]

# <|endoftext|> first: it is the end-of-text, padding and pooling token, as in the real tokenizers.
QWEN3_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>")


def _tokenizer(append_end: bool = False):
    tokenizer = train_tokenizer(QWEN3_SPECIAL_TOKENS, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    # The reranker reads the logits of "yes" and "no" as single tokens (no leading space).
    missing = [w for w in ("yes", "no") if w not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_tokens(missing)
    if append_end:
        # Like the current Qwen3-Embedding tokenizer: every text ends with <|endoftext|>.
        from tokenizers.processors import TemplateProcessing

        end = ("<|endoftext|>", tokenizer.convert_tokens_to_ids("<|endoftext|>"))
        tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
            single="$A <|endoftext|>", pair="$A $B:1 <|endoftext|>:1", special_tokens=[end])
    tokenizer.padding_side = "left"
    return tokenizer


def _config(vocab_size: int, pad_id: int, eos_id: int):
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=128, head_dim=16, max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=pad_id,
    )


def _write(outdir: Path, name: str, *, causal_lm: bool, append_end: bool) -> Path:
    import torch
    from transformers import Qwen3ForCausalLM, Qwen3Model

    quiet_transformers()
    target = Path(outdir) / name
    target.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(append_end)
    config = _config(len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id)
    torch.manual_seed(0)
    model = (Qwen3ForCausalLM if causal_lm else Qwen3Model)(config).eval()
    model.save_pretrained(target)  # safetensors
    tokenizer.save_pretrained(target)
    return target


def make_tiny_qwen3_embedding(outdir: Path, *, append_end: bool = True, name: str = "qwen3-embedding") -> Path:
    """Write a tiny random Qwen3Model and its tokenizer to ``outdir/name``; return that folder.

    ``append_end``: the tokenizer appends ``<|endoftext|>`` to every text, as the current
    Qwen3-Embedding tokenizer does; False gives a tokenizer like its first release, which did not.
    """
    return _write(outdir, name, causal_lm=False, append_end=append_end)


def make_tiny_qwen3_reranker(outdir: Path) -> Path:
    """Write a tiny random Qwen3ForCausalLM and its tokenizer to ``outdir/qwen3-reranker``; return that folder."""
    return _write(outdir, "qwen3-reranker", causal_lm=True, append_end=False)
