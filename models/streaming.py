"""Token streaming for transformers ``generate``: one worker thread, pieces handed to the caller.

Shared by every generating backend (Qwen2.5-VL, the packaged Qwen2.5 answerer). Thinking is
off in every prompt, but a ``<think>`` block a model writes anyway is never shown.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator

__all__ = ["stream_generate"]


def stream_generate(model: Any, tokenizer: Any, generate_kwargs: dict[str, Any]) -> Iterator[str]:
    """Run ``model.generate(**generate_kwargs)`` in a thread and yield the new text as it is decoded.

    The caller holds whatever lock serialises the model; an error in the generating thread
    is raised here, in the caller's thread, after the pieces already written.
    """
    import torch
    from transformers import TextIteratorStreamer

    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with torch.inference_mode():
                model.generate(**generate_kwargs, streamer=streamer)
        except BaseException as exc:  # surfaced in the caller's thread below
            errors.append(exc)
            streamer.end()

    thread = threading.Thread(target=work, name="generate", daemon=True)
    thread.start()
    in_think = False
    for piece in streamer:
        if "<think>" in piece:
            in_think = True
        if not in_think and piece:
            yield piece
        if "</think>" in piece:
            in_think = False
    thread.join()
    if errors:
        raise errors[0]
