"""Questions about a whole video ("what is this video about?", "summarise the lecture").

Such a question names no fact to search for: its words ("video", "about", "summarise")
match nothing, or match by chance. It is answered from the best-matching video's own
content instead: the moments spread over the whole video, not the best few.
"""

from __future__ import annotations

import re
from typing import Sequence

from indexer.schema import Moment

__all__ = ["is_general", "topic_of", "overview_moments", "OVERVIEW_MOMENTS"]

OVERVIEW_MOMENTS = 8  # lines of a video an overview reads (the prompt stays short)

_GENERAL = re.compile(
    r"^\s*(?:"
    r"what(?:'s| is| are)\s+(?:this|the|that|these)\s+(?:\w+\s+){0,2}(?:about)\b"
    r"|what(?:'s| is)\s+(?:it|this)\s+about\b"
    r"|what\s+(?:happens|is said|is discussed)\s+in\s+(?:this|the|that)\b"
    r"|(?:please\s+)?(?:summari[sz]e|sum up|give (?:me )?(?:a |an )?(?:summary|overview) of|describe)\b"
    r"|(?:a |the )?(?:summary|overview) of\b"
    r")", re.IGNORECASE)
_GENERAL_ZH = re.compile(r"(?:讲了什么|讲的是什么|说了什么|关于什么|主要内容|总结|概括|概述)")
# Words of a general question that say nothing about which video is meant.
_FILLER = re.compile(
    r"\b(?:what's|what|is|are|this|that|these|the|a|an|it|about|please|summari[sz]e|sum|up|give|me|summary|"
    r"overview|of|describe|happens|said|discussed|in|video|videos|clip|film|movie|recording|one)\b",
    re.IGNORECASE)


def is_general(question: str) -> bool:
    """Whether the question asks about a video as a whole rather than a fact in it."""
    return bool(_GENERAL.search(question) or _GENERAL_ZH.search(question))


def topic_of(question: str) -> str:
    """What is left to search for once the general words are gone ("summarise the lecture" -> "lecture")."""
    text = _GENERAL_ZH.sub(" ", question)
    text = _FILLER.sub(" ", text)
    text = re.sub(r"[^\w\s]", " ", text)
    text = re.sub(r"(?:这个|那个|视频|一下|的|了|吗|是)", " ", text)
    return " ".join(text.split())


def overview_moments(moments: Sequence[Moment], limit: int = OVERVIEW_MOMENTS) -> list[Moment]:
    """Up to ``limit`` moments with text, spread evenly from the start to the end of the video."""
    said = sorted((m for m in moments if m.text.strip()), key=lambda m: m.start)
    if len(said) <= limit:
        return said
    step = (len(said) - 1) / (limit - 1)
    return [said[round(i * step)] for i in range(limit)]
