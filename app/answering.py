"""Answers with citations, from retrieval hits.

* For each top video the answerer writes a candidate from the question and the labelled
  lines of its best moments (Qwen2.5-VL in the full profile also sees the clip around
  them; the packaged Qwen2.5-Coder-0.5B reads text only). A candidate cites the labels it
  names that were in its context (:func:`cited_moments`) and whose lines share a word
  with the answer (:func:`supporting`); one that cites nothing valid, is supported by no
  line, says the lines do not answer, only repeats the question (:func:`repeats_question`), or
  (``answer_from_best_moment``) does not cite its video's best moment (:func:`cites_best_moment`),
  falls back to the extractive answer of its video and says so in its ``method``.
* ``answerer = "extractive"`` (or no answerer): each video's candidate is the transcript
  of its best moment.
* The reranker scores each (question, candidate with its evidence) pair; the best wins (the
  packaged reranker's score is weighed by the retrieval score: ``retrieval_prior``).
  When its score is below the threshold, the answer is that the library does not answer
  the question, and the closest moments are shown instead (``found`` false). Without a
  reranker the retrieval score decides.

:func:`answer_events` yields the same work as it happens (each candidate token by
token, then its score, then the final answer) for the web UI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from indexer.schema import format_span
from models.types import Answerer, Clip, Reranker
from retriever import Hit, ScoredMoment

__all__ = ["Citation", "Candidate", "Answer", "AnswerEvent", "extractive_answer", "answer_events", "context_of",
           "cited_moments", "supporting", "repeats_question", "cites_best_moment", "all_declined", "NOTHING_FOUND",
           "NOT_ANSWERED"]

NOTHING_FOUND = "Nothing in the library answers this question."
NOT_ANSWERED = "The library does not answer this question. The closest moments:"
# A time label as the answerer may write it back: mm:ss or h:mm:ss, an en dash or a hyphen.
_LABEL = re.compile(r"(\d+:\d{2}(?::\d{2})?)\s*[–—-]\s*(\d+:\d{2}(?::\d{2})?)")
# What an answer that declines looks like (the packaged prompt's wording, and common others).
_DECLINED = re.compile(r"not in the library|\[none\]|(do(es)? not|don't|cannot|can't) (answer|say|mention)|"
                       r"no (line|information)|not (mentioned|stated)", re.IGNORECASE)
CLIP_MARGIN = 5.0  # seconds of video shown around the cited moments


@dataclass
class Citation:
    video: str
    name: str
    start: float
    end: float
    text: str = ""  # what the cited moment says (empty for a whole video): the words a written answer rests on

    def label(self) -> str:
        return f"{self.name} @ {format_span(self.start, self.end)}"

    def to_dict(self) -> dict[str, Any]:
        return {"video": self.video, "name": self.name, "start": round(self.start, 3), "end": round(self.end, 3),
                "text": self.text}


QUOTE_CHARS = 200  # the longest quote of a cited moment shown under an answer


def quotes(citations: Sequence[Citation], answer: str) -> list[str]:
    """What the cited moments say, shown under a written answer (the CLI, the web page), so that a few
    words can be checked against the sentence they rest on: none where the answer is that sentence."""
    said = [c.text.strip() for c in citations if c.text.strip() and c.text.strip() != answer.strip()]
    return [t if len(t) <= QUOTE_CHARS else t[: QUOTE_CHARS - 1].rstrip() + "…" for t in said]


@dataclass
class Candidate:
    video: str
    name: str
    answer: str
    score: float  # the reranker's score when there is a reranker, else the retrieval score
    citations: list[Citation] = field(default_factory=list)
    retrieval_score: float = 0.0
    method: str = "extractive"  # extractive | generative | extractive-fallback (the answerer's was not kept)
    generated: str = ""  # what the answerer wrote, when it wrote something
    evidence: str = ""  # the labelled lines of the cited moments (what the reranker reads with the answer)
    decline_p: float | None = None  # the answerer's P of declining, where it reports one (QwenAnswerer)
    answer_p: float | None = None  # P of the least likely token of what it wrote (QwenAnswerer)

    def to_dict(self) -> dict[str, Any]:
        return {"video": self.video, "name": self.name, "answer": self.answer, "score": round(self.score, 6),
                "retrieval_score": round(self.retrieval_score, 6), "method": self.method,
                **({"generated": self.generated} if self.generated else {}),
                **({"decline_p": round(self.decline_p, 6)} if self.decline_p is not None else {}),
                **({"answer_p": round(self.answer_p, 6)} if self.answer_p is not None else {}),
                "citations": [c.to_dict() for c in self.citations]}


@dataclass
class Answer:
    question: str
    answer: str
    citations: list[Citation]
    candidates: list[Candidate]
    hits: list[Hit] = field(default_factory=list)
    method: str = "extractive"  # the winner's method, "+rerank" when the reranker chose it
    closest: list[Citation] = field(default_factory=list)  # when nothing answers: the nearest moments
    general: bool = False  # a question about a whole video ("what is this video about?")

    @property
    def found(self) -> bool:
        return bool(self.citations)

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.answer, "found": self.found, "method": self.method,
                "citations": [c.to_dict() for c in self.citations],
                "closest": [c.to_dict() for c in self.closest],
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
        return [Citation(hit.video, hit.name, m.start, m.end, m.text) for m in moments]
    return [Citation(hit.video, hit.name, 0.0, hit.duration)]


def _best_moment(hit: Hit) -> ScoredMoment | None:
    """The moment search ranks first in the hit's video (its moments come best first)."""
    return next((m for m in hit.moments if m.text.strip()), None)


def _run_on(moment: ScoredMoment) -> list[Any]:
    """The sentences just before and after a moment that the speech runs on into, with no pause
    between (one ends where the other starts): the parts of one sentence the indexer cut at a pause
    past 7 s ("And so my fellow Americans ask not" / "what your country can do for you ..."), or two
    sentences said in one breath. Lines with a pause between them are not (the kneading line before
    "Put the loaf in the oven ...", 2.7 s earlier, says "10 minutes")."""
    return [m for m in moment.context if abs(m.end - moment.start) < 1e-3 or abs(m.start - moment.end) < 1e-3]


def _extractive(hit: Hit) -> Candidate | None:
    """The transcript of the hit's best moment with the speech it runs on into (:func:`_run_on`),
    citing the best moment."""
    best = _best_moment(hit)
    if best is None:
        return None
    said = sorted([best, *_run_on(best)], key=lambda m: m.start)
    return Candidate(hit.video, hit.name, " ".join(m.text.strip() for m in said), hit.score, _cited(hit, [best]),
                     hit.score, evidence=_lines(said))


def extractive_answer(question: str, hits: Sequence[Hit]) -> Answer:
    """Each top video offers the transcript of its best moment; the best retrieval score wins."""
    candidates = [c for c in (_extractive(hit) for hit in hits) if c is not None]
    candidates.sort(key=lambda c: c.score, reverse=True)
    if not candidates:
        return Answer(question, NOTHING_FOUND, [], [], list(hits))
    win = candidates[0]
    return Answer(question, win.answer, list(win.citations), candidates, list(hits))


def _lines(moments: Sequence[ScoredMoment]) -> str:
    return "\n".join(f"[{format_span(m.start, m.end)}] ({m.kind}) {m.text.strip()}"
                      for m in sorted(moments, key=lambda m: m.start) if m.text.strip())


def _with_run_on(hit: Hit) -> list[Any]:
    """A hit's best moments and the speech each runs on into (:func:`_run_on`), each once."""
    out, seen = [], set()
    for m in (*hit.moments, *(n for sm in hit.moments for n in _run_on(sm))):
        key = (m.kind, round(m.start, 3), round(m.end, 3))
        if key not in seen:
            seen.add(key)
            out.append(m)
    return out


def context_of(hit: Hit) -> str:
    """The transcript excerpts and descriptions of a hit's best moments (with the speech each runs on
    into), each with its time, in time order."""
    return _lines(_with_run_on(hit))


def cited_moments(generated: str, hit: Hit, context: str) -> list[ScoredMoment]:
    """The hit's moments whose labels the answer names, kept only if the label was in its context."""
    by_label = {format_span(m.start, m.end): m for m in reversed(_with_run_on(hit))}  # a best moment wins a label
    cited: list[ScoredMoment] = []
    for start, end in _LABEL.findall(generated):
        label = f"{start}–{end}"
        m = by_label.get(label)
        if m is not None and f"[{label}]" in context and m not in cited:
            cited.append(m)
    return cited


_STOP = frozenset("a an and are as at be by for from in is it of on or that the this to was were what which who "
                  "with not library".split())


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", text.lower()) if len(w) > 1 and w not in _STOP}


def supporting(answer: str, cited: Sequence[ScoredMoment], hit: Hit) -> list[ScoredMoment]:
    """The moments that support an answer: those it cites that share a word with it; when none of
    them does, the line of its context that shares the most (a small model may copy the wrong
    label beside the right answer); none when no line of its context does (it is not supported)."""
    words = _words(answer)
    kept = [m for m in cited if words & _words(m.text)]
    if kept or not words:
        return kept
    best = max(hit.moments, key=lambda m: len(words & _words(m.text)), default=None)
    return [best] if best is not None and words & _words(best.text) else []


def _answer_text(generated: str) -> str:
    """The answer without the labels and brackets it cites with: what comes before its first label
    (a small model may go on to copy the line after it), or all of it when nothing does."""
    def clean(text: str) -> str:
        text = re.sub(r"\[[\s,;]*\]|[\[\]]", " ", _LABEL.sub(" ", text))
        return " ".join(text.split()).strip(" ,;:-–")

    first = _LABEL.search(generated)
    return (clean(generated[:first.start()]) if first else "") or clean(generated)


def repeats_question(answer: str, question: str) -> bool:
    """Whether an answer only repeats words of its question ("Earth." to "which planet from the sun
    is the earth?"): it says nothing the question did not, so its video's line says more."""
    words = _words(answer)
    return bool(words) and words <= _words(question)


def cites_best_moment(candidate: Candidate, hit: Hit) -> bool:
    """Whether a candidate cites its video's best moment (or the video has no moment with text).
    The 0.5B model, given a video's lines, sometimes answers from a neighbouring line about
    something else ("10 minutes." to how long the loaf bakes, from the kneading line); on the
    evaluation set every written answer that cited only other lines was wrong (docs/EVALUATION.md).
    The speech the best moment runs on into counts as the best moment (:func:`_run_on`)."""
    best = _best_moment(hit)
    return best is None or any(abs(c.start - m.start) < 1e-6 and abs(c.end - m.end) < 1e-6
                               for c in candidate.citations for m in (best, *_run_on(best)))


def _generated_candidate(hit: Hit, generated: str, context: str, question: str = "") -> Candidate | None:
    """A candidate from the answerer's text, or None when it cites nothing valid, declines, or only
    repeats the question."""
    text = _answer_text(generated)
    cited = supporting(text, cited_moments(generated, hit, context), hit)
    if not cited or not text or _DECLINED.search(generated) or repeats_question(text, question):
        return None
    return Candidate(hit.video, hit.name, text, hit.score, _cited(hit, cited), hit.score, "generative", generated,
                     _lines(cited))


def _document(c: Candidate) -> str:
    """What the reranker reads: the answer and the evidence it cites."""
    return f"{c.answer}\nEvidence:\n{c.evidence}" if c.evidence else c.answer


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


def all_declined(candidates: Sequence[Candidate]) -> bool:
    """Whether the answerer said, for every top video, that its lines do not answer the question."""
    return bool(candidates) and all(c.method == "extractive-fallback" and _DECLINED.search(c.generated)
                                    for c in candidates)


def answer_events(question: str, hits: Sequence[Hit], answerer: Answerer | None, reranker: Reranker | None,
                  *, threshold: float = 0.0, general: bool = False,
                  declined_not_found: bool = False, best_moment_only: bool = False) -> Iterator[AnswerEvent]:
    """Answer step by step; the last event is ``final`` with the :class:`Answer`.

    ``threshold``: the reranker score the best candidate needs, else nothing is found.
    ``general``: the question is about a whole video, which every candidate answers.
    ``declined_not_found``: nothing is found, too, when the answerer declined for every video.
    ``best_moment_only``: a written answer that does not cite its video's best moment falls back
    to that moment's line (not for ``general`` questions, which draw on the whole video).
    """
    candidates: list[Candidate] = []
    for hit in hits:
        fallback = _extractive(hit)
        if answerer is None:
            if fallback is not None:
                candidates.append(fallback)
            continue
        context = context_of(hit)
        yield AnswerEvent("candidate", video=hit.video)
        pieces = []
        for piece in answerer.stream(question, context, _clip(hit)):
            pieces.append(piece)
            yield AnswerEvent("token", video=hit.video, text=piece)
        generated = "".join(pieces).strip()
        candidate = _generated_candidate(hit, generated, context, question)
        if candidate is not None and best_moment_only and not general and not cites_best_moment(candidate, hit):
            candidate = None  # its video's best line instead
        if candidate is None and fallback is not None:
            fallback.method, fallback.generated = "extractive-fallback", generated
            candidate = fallback
        if candidate is not None:
            candidate.decline_p = getattr(answerer, "last_decline_p", None)
            candidate.answer_p = getattr(answerer, "last_answer_p", None)
            candidates.append(candidate)
    reranked = reranker is not None and bool(candidates)
    if reranked:
        scores = reranker.score(question, [_document(c) for c in candidates])  # type: ignore[union-attr]
        for c, s in zip(candidates, scores):
            c.score = float(s)
    for c in candidates:
        yield AnswerEvent("scored", video=c.video, text=c.answer, score=c.score)
    # A reranker that is not a trained one (the packaged instruct model) weighs its P("yes") by
    # the retrieval score: alone it chose another video over a far better retrieved one.
    prior = reranked and getattr(reranker, "retrieval_prior", False)
    candidates.sort(key=lambda c: c.score * c.retrieval_score if prior else c.score, reverse=True)
    if not candidates:
        yield AnswerEvent("final", answer=Answer(question, NOTHING_FOUND, [], [], list(hits), general=general))
        return
    win = candidates[0]
    method = win.method + ("+rerank" if reranked else "")
    if not general and ((reranked and win.score < threshold) or (declined_not_found and all_declined(candidates))):
        closest = [cite for c in candidates for cite in c.citations]
        yield AnswerEvent("final", answer=Answer(question, NOT_ANSWERED, [], candidates, list(hits), method,
                                                 closest))
        return
    yield AnswerEvent("final", answer=Answer(question, win.answer, list(win.citations), candidates, list(hits),
                                             method, general=general))
