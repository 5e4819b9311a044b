"""Keyword channel: Whoosh TF-IDF (or BM25F), or Tantivy BM25, scores normalised to [0, 1] per query.

Raw scores are unbounded and would dominate a sum with cosines, so they are normalised
(``KEYWORD_NORMS``):

* ``query`` (the default): divided by what the question could score at best, the sum of the
  idf of its terms, which is what a document of average length holding each term once scores
  (clipped to 1). A document that shares one common word with a long question scores low
  however it ranks; one that holds every rare word of it scores near 1.
* ``top``: divided by the best score of the results, so the top document always gets 1.0,
  even for a weak match on a single common word (the reference design; it let a weak
  keyword match outrank a clearly better meaning match, docs/EVALUATION.md).

The query is never parsed as query syntax: it is
run through the index's own analyzer and its terms are OR-ed, so any string is a valid
query (``title:x``, ``"``, ``(((``, ``*x``, ``a AND NOT b`` are words or nothing). Only the
first :data:`MAX_QUERY_TERMS` distinct terms count: a question has far fewer, and a pasted
page of text would otherwise make a query of thousands of terms (seconds per search).
"""

from __future__ import annotations

from indexer.keyword_index import KeywordStore

__all__ = ["KeywordSearcher", "query_terms", "matched_spans", "MAX_QUERY_TERMS", "KEYWORD_NORMS"]

KEYWORD_NORMS = ("query", "top")

# Distinct terms of a query that count; the rest are ignored (a question has a handful).
MAX_QUERY_TERMS = 64


def query_terms(store: KeywordStore, text: str, limit: int = MAX_QUERY_TERMS) -> list[str]:
    """The first ``limit`` distinct index terms of a free-text query, in order."""
    seen: dict[str, None] = {}
    for token in store.analyzer(text):
        if token.text:
            seen.setdefault(token.text, None)
            if len(seen) >= limit:
                break
    return list(seen)


def matched_spans(store: KeywordStore, query: str, text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the words of ``text`` that match a term of ``query``.

    Both go through the index's analyzer, so "flows" matches "flow" as it does in search.
    Chinese words overlap (房地产 is also indexed as 房地 and 地产): overlapping spans are
    merged, so the spans are disjoint and in order.
    """
    terms = set(query_terms(store, query))
    if not terms:
        return []
    spans: list[tuple[int, int]] = []
    for start, end in sorted((t.startchar, t.endchar) for t in store.analyzer(text, chars=True) if t.text in terms):
        if spans and start < spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


class KeywordSearcher:
    def __init__(self, store: KeywordStore, scorer: str = "tfidf", norm: str = "query"):
        if norm not in KEYWORD_NORMS:
            raise ValueError(f"invalid keyword normalisation {norm!r}, expected one of: {', '.join(KEYWORD_NORMS)}")
        self.store = store
        self.scorer = scorer
        self.norm = norm

    def search(self, text: str, limit: int = 200) -> tuple[dict[int, float], dict[int, tuple[int, float]]]:
        """Normalised scores: ({video id: score}, {moment id: (video id, score)})."""
        terms = query_terms(self.store, text)
        if not terms:
            return {}, {}
        videos: dict[int, float] = {}
        moments: dict[int, tuple[int, float]] = {}
        for doc_type, fields in (("video", ("title", "body")), ("moment", ("text",))):
            results = self.store.search(terms, fields, limit, self.scorer)
            if not results:
                continue
            if self.norm == "top":
                best = max(score for _, _, score in results) or 1.0
            else:  # the text field's idf: a title match is a bonus on top of it
                best = sum(self.store.idf(terms, fields[-1], self.scorer).values()) or 1.0
            for video, moment, score in results:
                if doc_type == "video":
                    videos[video] = min(1.0, score / best)
                elif moment is not None:
                    moments[moment] = (video, min(1.0, score / best))
        return videos, moments
