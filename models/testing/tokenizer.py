"""A byte-level BPE tokenizer trained offline in a moment, for tiny test models."""

from __future__ import annotations

from typing import Sequence

__all__ = ["CORPUS", "train_tokenizer"]

# A little text with the words the tests and prompts use; any text would do.
CORPUS = [
    "Given a web search query, retrieve relevant passages that answer the query.",
    "Judge whether the Document meets the requirements based on the Query and the Instruct provided.",
    "Note that the answer can only be yes or no. yes no Yes No",
    "Instruct: Query: Document: Please describe the video. What happens in the video?",
    "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.",
    "Deep under every volcano there is a chamber full of hot magma. Red lava flows down the slopes.",
    "Mix flour, water, salt and yeast into a soft dough. Put the loaf in the oven.",
    "To fix a flat tire, first take the wheel off the bicycle frame. Saturn is the one with rings.",
    "system user assistant You are a helpful assistant. Answer from the transcript and the video.",
    "0 1 2 3 4 5 6 7 8 9 00:00 01:30 mm:ss seconds minutes transcript excerpt moment",
    "广州市房地产中介协会分析 我想问我在滨海新区有房 Permission is hereby granted, free of charge.",
]


def train_tokenizer(special_tokens: Sequence[str], *, vocab_size: int = 600, eos_token: str | None = None,
                    pad_token: str | None = None, corpus: Sequence[str] = CORPUS):
    """A ``PreTrainedTokenizerFast`` (byte-level BPE) with ``special_tokens`` as added tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(special_tokens),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(corpus) * 4, trainer=trainer)
    extra = [t for t in special_tokens if t not in (eos_token, pad_token)]
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos_token, pad_token=pad_token,
                                   additional_special_tokens=extra)
