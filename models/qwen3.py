"""Qwen3 text vectors (Qwen3-Embedding) and relevance scores (Qwen3-Reranker), with transformers.

Both are decoder-only language models read at their last token. Inputs are padded on the
left, and position ids follow the attention mask, so a text scores the same alone and in a
batch. Thinking is off: the reranker's assistant turn opens with an empty think block, and
:func:`strip_think` removes any think block from generated text.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Sequence

import numpy as np

from models.base import LazyModel, quiet_transformers, resolve_dtype
from models.types import ModelLocation

__all__ = ["Qwen3TextEmbedder", "Qwen3Reranker", "strip_think", "DEFAULT_INSTRUCTION"]

# The retrieval instruction both model cards use.
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"

# Qwen3-Embedding reads the vector at this token, which its tokenizer appends to every text.
END_OF_TEXT = "<|endoftext|>"

_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL)


def strip_think(text: str) -> str:
    """Remove ``<think>…</think>`` blocks from generated text.

    Also removes what a truncated generation leaves: reasoning up to a closing tag whose
    opening tag was in the prompt, and an opening tag that was never closed.
    """
    text = _THINK_BLOCK.sub("", text)
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    if "<think>" in text:
        text = text.split("<think>", 1)[0]
    return text.strip()


def _position_ids(attention_mask: Any) -> Any:
    """Positions that count real tokens only, so left padding does not shift them."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def _load_tokenizer(location: ModelLocation) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(location.path), local_files_only=True, padding_side="left")
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = END_OF_TEXT if END_OF_TEXT in tokenizer.get_vocab() else tokenizer.eos_token
    return tokenizer


class Qwen3TextEmbedder(LazyModel):
    """Qwen3-Embedding vectors: last-token pooling, L2-normalised, an instruction on queries.

    Options: ``batch_size`` (texts per forward pass), ``max_length`` (tokens per text),
    ``dtype`` (``auto``: bfloat16 on CUDA, float32 elsewhere), ``query_instruction``
    (the task written before each query; empty for none).
    """

    role = "text_embedder"
    backend_name = "qwen3-embedding"

    def __init__(self, model: str | None = None, *, batch_size: int = 16, max_length: int = 1024,
                 dtype: str = "auto", query_instruction: str = DEFAULT_INSTRUCTION, **kw):
        super().__init__(model, **kw)
        self.batch_size = max(1, int(batch_size))
        self.max_length = int(max_length)
        self.dtype = dtype
        self.query_instruction = query_instruction
        self._dim: int | None = None
        self._run_lock = threading.Lock()

    def _load(self, location: ModelLocation, device: str) -> None:
        from transformers import AutoModel

        quiet_transformers()
        self._tokenizer = _load_tokenizer(location)
        self._model = AutoModel.from_pretrained(
            str(location.path), local_files_only=True, dtype=resolve_dtype(device, self.dtype),
        ).to(device).eval()
        self._device = device
        self._dim = int(self._model.config.hidden_size)
        # The current Qwen3-Embedding tokenizer appends <|endoftext|> itself; its first release
        # (and some tokenizer loaders) did not, and the vectors are read at that token.
        self._end_id = self._tokenizer.convert_tokens_to_ids(END_OF_TEXT)
        if self._end_id is None or self._end_id == self._tokenizer.unk_token_id:
            self._end_id = self._tokenizer.eos_token_id
        probe = self._tokenizer("a")["input_ids"]
        self._append_end = not probe or probe[-1] != self._end_id

    @property
    def dim(self) -> int:
        self.load()
        assert self._dim is not None
        return self._dim

    def format_query(self, query: str) -> str:
        """The query as the model expects it: with the task instruction, when there is one."""
        if not self.query_instruction:
            return query
        return f"Instruct: {self.query_instruction}\nQuery:{query}"

    def _inputs(self, texts: Sequence[str]) -> Any:
        """Token ids ending with the end-of-text token, truncated to ``max_length``, padded on the left."""
        self.load()
        reserve = 1 if self._append_end else 0
        encoded = self._tokenizer(list(texts), padding=False, truncation=True,
                                  max_length=max(1, self.max_length - reserve), return_attention_mask=False)
        ids = [list(row) + [self._end_id] if self._append_end else list(row) for row in encoded["input_ids"]]
        return self._tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self.load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = []
        with self._run_lock, torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                batch = self._inputs(texts[i: i + self.batch_size])
                mask = batch["attention_mask"].to(self._device)
                hidden = self._model(input_ids=batch["input_ids"].to(self._device), attention_mask=mask,
                                     position_ids=_position_ids(mask)).last_hidden_state
                # The last real token of each row: the last position under left padding, and
                # still the right one if a tokenizer pads on the right.
                positions = torch.arange(mask.shape[1], device=mask.device)
                last = (mask.long() * positions).argmax(dim=1)
                pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last].float()
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
                out.append(pooled.cpu().numpy())
        return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text (documents take no instruction)."""
        return self._encode(texts)

    def embed_query(self, text: str) -> np.ndarray:
        """The L2-normalised float32 vector of a query, with the query instruction."""
        return self._encode([self.format_query(text)])[0]


class Qwen3Reranker(LazyModel):
    """Qwen3-Reranker relevance: the probability of "yes" over "no" as the next token.

    The prompt follows the model card: a system turn asking whether the document meets the
    requirements of the query and the instruction, a user turn with both, and an assistant
    turn opened with an empty think block. Options: ``instruction``, ``batch_size``,
    ``max_length`` (tokens per pair, template included), ``dtype``.
    """

    role = "reranker"
    backend_name = "qwen3-reranker"

    SYSTEM = ('Judge whether the Document meets the requirements based on the Query and the Instruct provided. '
              'Note that the answer can only be "yes" or "no".')
    PREFIX = f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n"
    SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"

    def __init__(self, model: str | None = None, *, instruction: str = DEFAULT_INSTRUCTION, batch_size: int = 8,
                 max_length: int = 8192, dtype: str = "auto", **kw):
        super().__init__(model, **kw)
        self.instruction = instruction or DEFAULT_INSTRUCTION
        self.batch_size = max(1, int(batch_size))
        self.max_length = int(max_length)
        self.dtype = dtype
        self._run_lock = threading.Lock()

    def _weights(self, location: ModelLocation, device: str) -> tuple[Any, Any]:
        """The causal language model and its (left-padding) tokenizer."""
        from transformers import AutoModelForCausalLM

        tokenizer = _load_tokenizer(location)
        model = AutoModelForCausalLM.from_pretrained(
            str(location.path), local_files_only=True, dtype=resolve_dtype(device, self.dtype),
        ).to(device).eval()
        return model, tokenizer

    def _load(self, location: ModelLocation, device: str) -> None:
        quiet_transformers()
        self._model, tokenizer = self._weights(location, device)
        self._device = device
        self._prefix_ids = tokenizer.encode(self.PREFIX, add_special_tokens=False)
        self._suffix_ids = tokenizer.encode(self.SUFFIX, add_special_tokens=False)
        ids = {}
        for word in ("yes", "no"):
            token_id = tokenizer.convert_tokens_to_ids(word)
            if token_id is None or token_id == tokenizer.unk_token_id:
                raise ValueError(f"reranker: the tokenizer at {location.path} has no single token {word!r}")
            ids[word] = token_id
        self._yes_id, self._no_id = ids["yes"], ids["no"]
        self._tokenizer = tokenizer

    def format_pair(self, query: str, document: str) -> str:
        """The user turn for one (query, document) pair."""
        return f"<Instruct>: {self.instruction}\n<Query>: {query}\n<Document>: {document}"

    def _inputs(self, query: str, documents: Sequence[str]) -> Any:
        """Pairs wrapped in the prompt template, each truncated to fit ``max_length``, then padded on the left.

        Padding comes last so that the attention mask covers the template tokens too.
        """
        self.load()
        room = max(1, self.max_length - len(self._prefix_ids) - len(self._suffix_ids))
        encoded = self._tokenizer([self.format_pair(query, d) for d in documents], padding=False, truncation=True,
                                  max_length=room, add_special_tokens=False, return_attention_mask=False)
        ids = [self._prefix_ids + list(row) + self._suffix_ids for row in encoded["input_ids"]]
        return self._tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        """Relevance of each document to the query: P("yes") over {"yes", "no"}, in [0, 1]."""
        import torch

        self.load()
        if not documents:
            return []
        scores: list[float] = []
        with self._run_lock, torch.inference_mode():
            for i in range(0, len(documents), self.batch_size):
                batch = self._inputs(query, documents[i: i + self.batch_size])
                mask = batch["attention_mask"].to(self._device)
                logits = self._model(input_ids=batch["input_ids"].to(self._device), attention_mask=mask,
                                     position_ids=_position_ids(mask), logits_to_keep=1).logits[:, -1, :]
                pair = torch.stack([logits[:, self._no_id], logits[:, self._yes_id]], dim=1).float()
                scores.extend(torch.softmax(pair, dim=1)[:, 1].cpu().tolist())
        return scores
