"""Answers with citations, from retrieval hits.

* Packaged profile (no answering model): the answer is extractive, the transcript of
  the best moment of each top video, and the retrieval score decides between them.
* Full profile: for each top video the answerer (Qwen2.5-VL) writes a candidate from
  the question, the transcript excerpts around the best moments with their times, and
  the clip around those moments; the reranker (Qwen3) scores each (question,
  candidate) and the highest wins, citing its video's moments. Without a reranker the
  retrieval score decides.

:func:`answer_events` yields the same work as it happens (each candidate token by
token, then its score, then the final answer) for the web UI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from indexer.schema import format_span
from models.types import Answerer, Clip, Reranker
from retriever import Hit, ScoredMoment

__all__ = ["Citation", "Candidate", "Answer", "AnswerEvent", "extractive_answer", "answer_events",
           "context_of", "NOTHING_FOUND"]

NOTHING_FOUND = "Nothing in the library answers this question."
CLIP_MARGIN = 5.0  # seconds of video shown around the cited moments


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
    score: float  # the reranker's score when there is a reranker, else the retrieval score
    citations: list[Citation] = field(default_factory=list)
    retrieval_score: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"video": self.video, "name": self.name, "answer": self.answer, "score": round(self.score, 6),
                "retrieval_score": round(self.retrieval_score, 6),
                "citations": [c.to_dict() for c in self.citations]}


@dataclass
class Answer:
    question: str
    answer: str
    citations: list[Citation]
    candidates: list[Candidate]
    hits: list[Hit] = field(default_factory=list)
    method: str = "extractive"  # extractive | generative | generative+rerank

    @property
    def found(self) -> bool:
        return bool(self.citations)

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.answer, "method": self.method,
                "citations": [c.to_dict() for c in self.citations],
                "candidates": [c.to_dict() for c in self.candidates]}


@dataclass
class AnswerEvent:
    """One step of answering: ``hits`` (what was found), ``candidate`` (a video's answer begins),
    ``token``, ``scored``, ``final`` (the :class:`Answer`)."""

    kind: str
    video: str = ""
    text: str = ""
    score: float | None = None
    answer: Answer | None = None
    hits: list[Hit] = field(default_factory=list)


def _cited(hit: Hit, moments: Sequence[ScoredMoment]) -> list[Citation]:
    if moments:
        return [Citation(hit.video, hit.name, m.start, m.end) for m in moments]
    return [Citation(hit.video, hit.name, 0.0, hit.duration)]


def extractive_answer(question: str, hits: Sequence[Hit]) -> Answer:
    """Each top video offers the transcript of its best moment; the best retrieval score wins."""
    candidates = []
    for hit in hits:
        best = next((m for m in hit.moments if m.text.strip()), None)
        if best is None:
            continue
        candidates.append(Candidate(hit.video, hit.name, best.text.strip(), hit.score, _cited(hit, [best]),
                                    hit.score))
    candidates.sort(key=lambda c: c.score, reverse=True)
    if not candidates:
        return Answer(question, NOTHING_FOUND, [], [], list(hits))
    win = candidates[0]
    return Answer(question, win.answer, list(win.citations), candidates, list(hits))


def context_of(hit: Hit) -> str:
    """The transcript excerpts and descriptions of a hit's best moments, each with its time, in time order."""
    lines = [f"[{format_span(m.start, m.end)}] ({m.kind}) {m.text.strip()}"
             for m in sorted(hit.moments, key=lambda m: m.start) if m.text.strip()]
    return "\n".join(lines)


def _clip(hit: Hit) -> Clip | None:
    """The stretch of the video around the hit's best moments, if the file is still there."""
    path = Path(hit.video)
    if not path.exists():
        return None
    if not hit.moments:
        return Clip(path)
    start = max(0.0, min(m.start for m in hit.moments) - CLIP_MARGIN)
    end = min(hit.duration or float("inf"), max(m.end for m in hit.moments) + CLIP_MARGIN)
    return Clip(path, start, end)


def answer_events(question: str, hits: Sequence[Hit], answerer: Answerer | None,
                  reranker: Reranker | None) -> Iterator[AnswerEvent]:
    """Answer step by step; the last event is ``final`` with the :class:`Answer`."""
    if answerer is None:
        yield AnswerEvent("final", answer=extractive_answer(question, hits))
        return
    candidates: list[Candidate] = []
    for hit in hits:
        yield AnswerEvent("candidate", video=hit.video)
        pieces = []
        for piece in answerer.stream(question, context_of(hit), _clip(hit)):
            pieces.append(piece)
            yield AnswerEvent("token", video=hit.video, text=piece)
        text = "".join(pieces).strip()
        cited = [m for m in hit.moments if m.kind != "keyframe"][:2] or hit.moments[:1]
        candidates.append(Candidate(hit.video, hit.name, text, hit.score, _cited(hit, cited), hit.score))
    method = "generative"
    if reranker is not None and candidates:
        scores = reranker.score(question, [c.answer for c in candidates])
        for c, s in zip(candidates, scores):
            c.score = float(s)
        method = "generative+rerank"
    for c in candidates:
        yield AnswerEvent("scored", video=c.video, text=c.answer, score=c.score)
    candidates.sort(key=lambda c: c.score, reverse=True)
    if not candidates:
        yield AnswerEvent("final", answer=Answer(question, NOTHING_FOUND, [], [], list(hits), method))
        return
    win = candidates[0]
    yield AnswerEvent("final", answer=Answer(question, win.answer, list(win.citations), candidates, list(hits),
                                             method))
