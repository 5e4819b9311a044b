"""Answers with citations, from retrieval hits.

In the packaged profile there is no answering model: the answer is extractive, the
transcript of the best moment of each top video, and the retrieval score decides
between them. The full profile (Qwen2.5-VL answers, Qwen3 reranker) plugs in here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from indexer.schema import format_span
from retriever import Hit

__all__ = ["Citation", "Candidate", "Answer", "extractive_answer"]


@dataclass
class Citation:
    video: str
    name: str
    start: float
    end: float

    def label(self) -> str:
        return f"{self.name} @ {format_span(self.start, self.end)}"

    def to_dict(self) -> dict[str, Any]:
        return {"video": self.video, "name": self.name, "start": round(self.start, 3), "end": round(self.end, 3)}


@dataclass
class Candidate:
    video: str
    name: str
    answer: str
    score: float
    citations: list[Citation] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"video": self.video, "name": self.name, "answer": self.answer, "score": round(self.score, 6),
                "citations": [c.to_dict() for c in self.citations]}


@dataclass
class Answer:
    question: str
    answer: str
    citations: list[Citation]
    candidates: list[Candidate]
    hits: list[Hit] = field(default_factory=list)
    method: str = "extractive"

    @property
    def found(self) -> bool:
        return bool(self.citations)

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.answer, "method": self.method,
                "citations": [c.to_dict() for c in self.citations],
                "candidates": [c.to_dict() for c in self.candidates]}


NOTHING_FOUND = "Nothing in the library answers this question."


def extractive_answer(question: str, hits: Sequence[Hit]) -> Answer:
    """Each top video offers the transcript of its best moment; the best retrieval score wins."""
    candidates = []
    for hit in hits:
        best = next((m for m in hit.moments if m.text.strip()), None)
        if best is None:
            continue
        candidates.append(Candidate(hit.video, hit.name, best.text.strip(), hit.score,
                                    [Citation(hit.video, hit.name, best.start, best.end)]))
    candidates.sort(key=lambda c: c.score, reverse=True)
    if not candidates:
        return Answer(question, NOTHING_FOUND, [], [], list(hits))
    win = candidates[0]
    return Answer(question, win.answer, list(win.citations), candidates, list(hits))
