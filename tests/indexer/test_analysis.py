"""The keyword analyzer: Chinese segmentation, Traditional/Simplified folding, mixed scripts, offsets."""

import pytest

from indexer.analysis import analyzed, analyzer, line_language, to_simplified
from indexer.catalog import Catalog
from indexer.schema import Moment
from indexer.derived import DerivedIndexes
from indexer.keyword_index import KeywordOptions
from indexer.manifest import write_manifest
from retriever.keyword import KeywordSearcher, matched_spans, query_terms


def test_traditional_is_folded_to_simplified_keeping_offsets():
    text = "廣州市房地產中介協會分析"  # as the packaged Whisper base writes it
    assert to_simplified(text) == "广州市房地产中介协会分析"
    assert len(to_simplified(text)) == len(text)
    assert to_simplified("no Chinese here") == "no Chinese here"


def test_chinese_runs_are_segmented_and_english_is_stemmed():
    terms = analyzed("滨海新区的Python代码 and the volcanoes erupted").split()
    assert {"滨海", "新区", "python", "代码", "volcano", "erupt"} <= set(terms)
    assert "的" not in terms and "the" not in terms  # stop words of both languages
    assert "滨海新区的python代码" not in terms  # not one token per run
    assert analyzed("视频里说了什么？") == ""  # a question made only of function words


def test_offsets_point_into_the_original_text():
    text = "佛山的房地產 market"
    tokens = [(t.text, text[t.startchar:t.endchar]) for t in analyzer()(text, chars=True)]
    assert ("房地产", "房地產") in tokens and ("market", "market") in tokens


@pytest.mark.parametrize("engine", ["whoosh", "tantivy"])
def test_simplified_questions_find_traditional_transcripts_and_back(tmp_path, engine):
    texts = {"zh_trad.mp4": "廣州市房地產中介協會分析", "zh_simp.mp4": "天津滨海新区的港口很大",
             "mixed.mp4": "我们用Python写代码 every day", "en.mp4": "the volcano erupted at night"}
    with Catalog(tmp_path) as catalog:
        write_manifest(catalog, {"spaces": {}})
        derived = DerivedIndexes(catalog, keyword_options=KeywordOptions(engine))
        derived.rebuild()
        for name, text in texts.items():
            moments = [Moment(0.0, 5.0, "speech", text)]
            added = catalog.add_video(content_id=name, path=f"/v/{name}", stat=None, info={"duration": 5.0},
                                      keyframes=[], moments=moments, vectors={}, run_id=None)
            moments[0].id, moments[0].video_id = added.moment_ids[0], added.video_id
            derived.apply(catalog.videos([added.video_id])[0], moments, {})
        searcher = KeywordSearcher(derived.keywords)

        def top(query):
            videos, _ = searcher.search(query)
            return max(videos, key=videos.get) if videos else None

        ids = {name: catalog.video_by_path(f"/v/{name}").id for name in texts}
        assert top("广州房地产中介协会说了什么") == ids["zh_trad.mp4"]  # Simplified question, Traditional text
        assert top("濱海新區的港口") == ids["zh_simp.mp4"]  # Traditional question, Simplified text
        assert top("Python 代码") == ids["mixed.mp4"]
        assert top("volcanoes") == ids["en.mp4"]
        assert top("什么？") is None
        spans = matched_spans(derived.keywords, "房地产", texts["zh_trad.mp4"])
        assert [texts["zh_trad.mp4"][a:b] for a, b in spans] == ["房地產"]



GERMAN_DOC = "Jeden, der diese Software und die dazugehörigen Dokumentationsdateien erhält, wird hiermit erlaubt."
ENGLISH_DOC = "Permission is granted to any person obtaining a copy of this software and the documentation files."


def test_german_inflections_are_one_term():
    """A German line is stemmed by Snowball's German stemmer: the question's "dazugehörige" and the
    transcript's "dazugehörigen" (and plural and singular) are one term."""
    assert line_language(GERMAN_DOC) == "de" and line_language("dazugehörige Dokumentationsdateien") == "de"
    question = analyzed("dazugehörige Dokumentationsdatei").split()
    document = analyzed(GERMAN_DOC).split()
    assert len(question) == 2 and set(question) <= set(document)
    assert analyzed("die Genehmigungen wurden erteilt").split()[1] == analyzed("eine Genehmigung").split()[-1]
    assert analyzed("Les enfants jouaient").split()[-2:] == analyzed("l'enfant joue").split()[-2:]  # French


def test_english_keeps_porters_terms():
    """English text gets exactly the terms (and positions) of the analyzer before languages
    were told apart: Whoosh's StopFilter with our stop words, then Porter. Checked on every
    question of the English evaluation set and on a transcript line."""
    import json

    from whoosh.analysis import LowercaseFilter, StemFilter, StopFilter

    from indexer.analysis import STOP_WORDS, MixedTokenizer
    from tests.conftest import ROOT

    porter = MixedTokenizer() | LowercaseFilter() | StopFilter(stoplist=STOP_WORDS, minsize=1) | StemFilter()
    lines = (ROOT / "benchmarks" / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line)["question"] for line in lines if line.strip()] + [ENGLISH_DOC]
    assert len(texts) >= 80

    def terms(chain, text):
        return [(t.text, t.pos) for t in chain(text, positions=True)]

    assert [t for t in texts if terms(analyzer(), t) != terms(porter, t)] == []
    assert analyzed("the volcanoes erupted") == "volcano erupt"
    # Languages whose Whoosh stemmer fails (Arabic) or is missing (Turkish) keep Porter's terms too.
    others = {"ar": "البركان ثار في الليل وتدفقت الحمم", "tr": "Yanardağ gece patladı ve lavlar aktı",
              "ar ": "lava 火山 вулкан البركان ज्वालामुखी"}
    for language, text in others.items():
        assert line_language(text) == language.strip()
        assert terms(analyzer(), text) == terms(porter, text)


def _add_videos(catalog, derived, videos: dict[str, list[str]]) -> dict[str, int]:
    """Commit videos of speech moments (one per text) to the catalog and the derived indexes: {name: id}."""
    derived.rebuild()
    for name, texts in videos.items():
        moments = [Moment(float(i), i + 1.0, "speech", text) for i, text in enumerate(texts)]
        added = catalog.add_video(content_id=name, path=f"/v/{name}", stat=None, info={"duration": 5.0},
                                  keyframes=[], moments=moments, vectors={}, run_id=None)
        for moment, moment_id in zip(moments, added.moment_ids):
            moment.id, moment.video_id = moment_id, added.video_id
        derived.apply(catalog.videos([added.video_id])[0], moments, {})
    return {name: catalog.video_by_path(f"/v/{name}").id for name in videos}


@pytest.mark.parametrize("engine", ["whoosh", "tantivy"])
def test_a_german_question_finds_the_german_moment_by_keywords(tmp_path, engine):
    """Through the real index: both German words of the question match the German transcript's
    inflected forms, in its moment and its video, and highlighting marks both; a video with an
    English and a German moment stems each line in its own language."""
    videos = {"de.mp4": [GERMAN_DOC, "Dies umfasst insbesondere das Recht, die Software zu verwenden."],
              "en.mp4": [ENGLISH_DOC],
              "both.mp4": ["The volcanoes erupted at night.", "Die Kinder spielten im Garten."]}
    with Catalog(tmp_path) as catalog:
        write_manifest(catalog, {"spaces": {}})
        derived = DerivedIndexes(catalog, keyword_options=KeywordOptions(engine))
        ids = _add_videos(catalog, derived, videos)
        searcher = KeywordSearcher(derived.keywords)

        question = "dazugehörige Dokumentationsdateien"
        videos_found, moments_found = searcher.search(question)
        assert max(videos_found, key=videos_found.get) == ids["de.mp4"]
        best = max(moments_found, key=lambda m: moments_found[m][1])
        assert moments_found[best][0] == ids["de.mp4"]
        terms = query_terms(derived.keywords, question)
        assert len(terms) == 2
        for term in terms:  # the index holds each of the question's terms for that moment
            assert best in [m for _, m, _ in derived.keywords.search([term], ("text",), 10)], term
        spans = matched_spans(derived.keywords, question, GERMAN_DOC)
        assert [GERMAN_DOC[a:b] for a, b in spans] == ["dazugehörigen", "Dokumentationsdateien"]

        for query, name in (("das Kind spielt", "both.mp4"), ("volcano eruption", "both.mp4")):
            found, _ = searcher.search(query)
            assert found and max(found, key=found.get) == ids[name], query


def test_an_index_of_the_previous_analyzer_is_rebuilt_by_the_writer(tmp_path):
    """A keyword index written by the analyzer before languages were told apart (Porter for every
    language, ``derived.json`` naming ``cjk-1``) is not current; the writer's check rebuilds it
    from the catalog with the new terms, and the German question then finds its moment."""
    import json

    from whoosh import index as windex
    from whoosh.analysis import LowercaseFilter, StemFilter, StopFilter
    from whoosh.fields import ID, STORED, TEXT, Schema

    from indexer.analysis import ANALYZER_VERSION, STOP_WORDS, MixedTokenizer

    with Catalog(tmp_path) as catalog:
        write_manifest(catalog, {"spaces": {}})
        derived = DerivedIndexes(catalog, keyword_options=KeywordOptions("whoosh"))
        ids = _add_videos(catalog, derived, {"de.mp4": [GERMAN_DOC], "en.mp4": [ENGLISH_DOC]})
        # Write the index again as the previous version did, and its state as that version recorded it.
        old = MixedTokenizer() | LowercaseFilter() | StopFilter(stoplist=STOP_WORDS, minsize=1) | StemFilter()
        schema = Schema(key=ID(unique=True, stored=True), doc_type=ID(stored=True), video=ID(stored=True),
                        moment=STORED(), title=TEXT(analyzer=old), body=TEXT(analyzer=old), text=TEXT(analyzer=old))
        derived.keywords.remove_files()
        derived.keywords.dir.mkdir(parents=True)
        writer = windex.create_in(str(derived.keywords.dir), schema).writer()
        for video in catalog.videos():
            for doc in derived.keywords._docs(video, catalog.moments_of(video.id)):
                writer.add_document(**doc)
        writer.commit()
        state = tmp_path / DerivedIndexes.STATE
        state.write_text(json.dumps({**json.loads(state.read_text()), "analyzer": "cjk-1"}))

        question = "dazugehörige Dokumentationsdateien"
        stale = DerivedIndexes(catalog, keyword_options=KeywordOptions("whoosh"))
        assert not stale.is_current()
        assert not KeywordSearcher(stale.keywords).search(question)[0]  # the old terms miss the new ones
        assert stale.make_usable()  # what the writer (videoqa index, serve) does when it takes the lock
        assert json.loads(state.read_text())["analyzer"] == ANALYZER_VERSION and stale.is_current()
        assert stale.keywords.doc_keys() == {f"v{v.id}" for v in catalog.videos()} | {
            f"m{m.id}" for v in catalog.videos() for m in catalog.moments_of(v.id)}
        found, _ = KeywordSearcher(stale.keywords).search(question)
        assert max(found, key=found.get) == ids["de.mp4"]


def test_english_clitics_after_an_apostrophe_are_not_words():
    """A question with a possessive ("nation's") matched every transcript that says "it's" on the token s."""
    assert analyzed("which nation's citizens is the speaker addressing?").split() == [
        "nation", "citizen", "speaker", "address"]
    assert "s" not in analyzed("It's a bit like beer that\u2019s gone off, and it's not").split()
    assert not {"t", "ll", "m"} & set(analyzed("don't, we'll see, I'm here").split())
    assert {"d", "t"} <= set(analyzed("vitamin D and T cells").split())  # a letter alone is still a word
