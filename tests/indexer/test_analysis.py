"""The keyword analyzer: Chinese segmentation, Traditional/Simplified folding, mixed scripts, offsets."""

import pytest

from indexer.analysis import analyzed, analyzer, to_simplified
from indexer.catalog import Catalog
from indexer.schema import Moment
from indexer.derived import DerivedIndexes
from indexer.keyword_index import KeywordOptions
from indexer.manifest import write_manifest
from retriever.keyword import KeywordSearcher, matched_spans


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

