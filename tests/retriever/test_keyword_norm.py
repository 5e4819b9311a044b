"""Keyword scores against what the question could score at best: a weak match scores low.

Two small keyword indexes (Whoosh and Tantivy) over handwritten moments, no models.
"""

import pytest

from indexer.keyword_index import TantivyKeywordStore, WhooshKeywordStore
from indexer.schema import Moment, Video
from retriever.keyword import KeywordSearcher

TEXTS = {
    1: ["Jupiter is the largest planet, and Saturn is the one with rings.",
        "Earth is the third planet from the sun, and it has one moon."],
    2: ["Press and fold the dough for ten minutes, then leave it to rise."],
    3: ["The BBC competes on quality, not on price."],
    4: ["I think it will be a lot better now I'm getting on."],
}


def _video(vid: int) -> Video:
    return Video(vid, f"c{vid}", f"/v/video{vid}.mp4", f"video{vid}.mp4", 20.0, 25.0, 640, 360, True, "en", "now")


@pytest.fixture(scope="module", params=[WhooshKeywordStore, TantivyKeywordStore], ids=["whoosh", "tantivy"])
def store(request, tmp_path_factory):
    store = request.param(tmp_path_factory.mktemp(request.param.engine))
    mid = 0
    add = []
    for vid, texts in TEXTS.items():
        moments = []
        for text in texts:
            mid += 1
            moments.append(Moment(0.0, 5.0, "speech", text, "en", mid, vid))
        add.append((_video(vid), moments))
    store.update(add)
    return store


def test_a_full_match_scores_near_one_and_a_one_word_match_low(store):
    searcher = KeywordSearcher(store, "bm25f" if store.engine == "whoosh" else "tfidf", "query")
    videos, moments = searcher.search("which planet has rings")
    assert max(videos, key=videos.get) == 1 and videos[1] > 0.55  # 0.60 here (BM25: the lengths of all moments)
    # one common word of a long question: it ranks first, but scores low
    videos, _ = searcher.search("is it better to compete on price or on the number of moons of saturn")
    assert videos and max(videos.values()) < 0.4  # 0.27-0.28 here
    top = KeywordSearcher(store, searcher.scorer, "top")
    assert max(top.search("is it better to compete on price or on the number of moons of saturn")[0].values()) == 1.0


def test_scores_stay_in_zero_one_and_order_is_kept(store):
    for norm in ("query", "top"):
        searcher = KeywordSearcher(store, "tfidf", norm)
        videos, moments = searcher.search("the dough the dough planet planet rings")
        assert videos and all(0.0 < s <= 1.0 for s in videos.values())
        assert all(0.0 < s <= 1.0 for _, s in moments.values())
    q = KeywordSearcher(store, "tfidf", "query").search("planet rings dough")[1]
    t = KeywordSearcher(store, "tfidf", "top").search("planet rings dough")[1]
    assert sorted(q, key=lambda m: -q[m][1]) == sorted(t, key=lambda m: -t[m][1])


def test_an_unknown_normalisation_is_refused(store):
    with pytest.raises(ValueError, match="query, top"):
        KeywordSearcher(store, "tfidf", "max")
