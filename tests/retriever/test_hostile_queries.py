"""Hostile and odd queries: any string gives a result or a clear message, never a traceback.

A property-based test (hypothesis, 1,000 examples per keyword engine) over the search API of
one small index, then every case of the list below by name through the Python API
(``VideoQA.search`` and ``ask``), the CLI (arguments, ``--queries`` files and standard input,
in process and as real processes) and the web UI (the running ``videoqa serve``).
"""

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import VideoQA, load_settings
from app.answering import NOTHING_FOUND
from indexer.catalog import Catalog
from indexer.schema import Keyframe, Moment, Video
from retriever.keyword import MAX_QUERY_TERMS, KeywordSearcher, query_terms
from tests.conftest import ROOT, SAMPLE_MEDIA

ENGINES = ("whoosh", "tantivy")
VOLCANO, BICYCLE = "volcano_lecture.mp4", "bicycle_repair.mp4"
EMPTY = "empty"  # the case gives no hits (it is empty once cleaned); None: any list will do
EMPTY_MESSAGE = "videoqa: error: the question is empty: give some words to search for"

# (id, query, the first hit's video, or EMPTY, or None). The index holds the two videos above.
CASES = [
    ("field-syntax", "title:volcano body:lava", VOLCANO),
    ("boolean-operators", "tire AND NOT wheel OR pump", BICYCLE),
    ("phrase", '"flat tire"', BICYCLE),
    ("unbalanced-quote", '"flat tire', BICYCLE),
    ("unbalanced-brackets", "((tire] {wheel", BICYCLE),
    ("closing-brackets-only", ")))]]}}>", None),
    ("leading-wildcard", "*lava ?agma", VOLCANO),
    ("wildcard-only", "*", None),
    ("fuzzy-boost-range", "lava~2 ash^3 [a TO z]", VOLCANO),
    ("backslashes", "\\\\lava\\", VOLCANO),
    ("10k-one-word", ("lava " * 2000)[:10_000], VOLCANO),
    ("10k-no-spaces", "x" * 10_000, None),
    ("10k-distinct-words", " ".join(f"w{i}" for i in range(2000))[:10_000], None),
    ("10k-mixed", ("tire 🌋 火山 \x00 (( " * 800)[:10_000], BICYCLE),
    ("empty", "", EMPTY),
    ("whitespace", " \t\n\r\u3000\x0b\x0c ", EMPTY),
    ("nul-only", "\x00\x00", EMPTY),
    ("nul-inside", "lava\x00eruption", VOLCANO),
    ("control-characters", "\x1b[31m tire\x1b[0m\x07\x08\x7f", BICYCLE),
    ("control-only", "\x01\x02\x1b\x7f\x9f", EMPTY),
    ("mixed-scripts", "lava 火山 вулкан البركان ज्वालामुखी", VOLCANO),
    ("chinese-only", "火山爆发的时候会发生什么", None),
    ("emoji-and-word", "🚲 tire 🔧", BICYCLE),
    ("emoji-only", "🌋🔥👩\u200d👩\u200d👧🇫🇷", None),
    ("invisible-format", "\u202etire\u200b\ufeff", BICYCLE),
    ("lone-surrogates", "\ud800lava\udcff", VOLCANO),
    ("combining-accent", "e\u0301ruption lava", VOLCANO),
    ("html", "<script>alert(1)</script> tire", BICYCLE),
    ("sql", "'; DROP TABLE videos; -- lava", VOLCANO),
    ("punctuation-only", "!@#$%^&*()_+-=[]{}|;':\",./<>?`~", None),
]
IDS = [case[0] for case in CASES]


@dataclass
class Expected:
    """What the catalog holds: every hit must come from here."""

    videos: dict[int, Video]
    moments: dict[int, dict[int, Moment]]
    keyframes: dict[int, dict[int, Keyframe]]


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread: on two cores shared with other work, two threads per query
    embedding are many times slower (they wait for each other)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def indexes(tmp_path_factory, hub, one_thread):
    """{engine: VideoQA} over the same two narrated videos: indexed once into Whoosh, then a copy
    of that index rebuilt into Tantivy from its catalog (no model runs for that)."""
    folder = tmp_path_factory.mktemp("hostile-videos")
    for name in (BICYCLE, VOLCANO):
        (folder / name).symlink_to(SAMPLE_MEDIA / name)
    base = tmp_path_factory.mktemp("hostile-index")

    def make(engine: str) -> VideoQA:
        return VideoQA(load_settings({"index_dir": str(base / engine), "profile": "packaged",
                                      "keyword_engine": engine}, env={}), hub=hub)

    whoosh = make("whoosh")
    assert whoosh.index([folder]).count("indexed") == 2
    shutil.copytree(base / "whoosh", base / "tantivy")
    tantivy = make("tantivy")
    tantivy.repair()
    out = {"whoosh": whoosh, "tantivy": tantivy}
    for engine, qa in out.items():
        assert qa.retriever.index_kinds()["keywords"] == engine
    return out


@pytest.fixture(scope="module")
def expected(indexes) -> Expected:
    with Catalog(indexes["whoosh"].index_dir, readonly=True) as catalog:
        videos = {v.id: v for v in catalog.videos()}
        return Expected(videos, {v: {m.id: m for m in catalog.moments_of(v)} for v in videos},
                        {v: {k.id: k for k in catalog.keyframes_of(v)} for v in videos})


def check_hits(qa: VideoQA, expected: Expected, query: str, hits, top_k: int) -> None:
    """Hits of catalogued videos, best first, scores in (0, sum of the weights], moments and
    keyframes of their own video, highlighting spans inside the text."""
    assert isinstance(hits, list) and len(hits) <= max(top_k, 0)
    top = sum(qa.retriever.options.weights.values()) + 1e-9
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for hit in hits:
        video = expected.videos[hit.video_id]
        assert (hit.video, hit.name) == (video.path, video.name)
        assert 0 < hit.score <= top
        assert all(0 <= s <= 1 + 1e-9 for s in hit.channels.values()), hit.channels
        assert {k["id"] for k in hit.keyframes} <= set(expected.keyframes[hit.video_id])
        for m in hit.moments:
            assert 0 < m.score <= top
            if m.kind == "keyframe":
                assert m.keyframe_id in expected.keyframes[hit.video_id]
            else:
                row = expected.moments[hit.video_id][m.id]
                assert (m.start, m.end, m.kind, m.text) == (row.start, row.end, row.kind, row.text)
                spans = qa.retriever.matched_spans(query, m.text)
                assert all(0 <= a < b <= len(m.text) for a, b in spans)


# -- the property ------------------------------------------------------------------------------

WORDS = ["lava", "volcano", "eruption", "magma", "ash", "bicycle", "tire", "wheel", "pump", "patch", "what",
         "the", "is", "flows", "Lava", "TIRES"]
SYNTAX = ["title:", "body:", "text:", "moment:", "AND", "OR", "NOT", "ANDNOT", "TO", "*", "?", "~", "~2", "^",
          "^3", '"', "'", "(", ")", "[", "]", "{", "}", "<", ">", "\\", "/", ":", "-", "+", "!", "&&", "||", "=",
          "%", "$", "@"]
ODD = ["\x00", "\t", "\n", "\r", "\x1b[31m", "\x07", "\x7f", "\x85", "\x9f", "\u200b", "\u200d", "\u202e",
       "\ufeff", "\u3000", "\u2028", "\ufffd", "\ud800", "\udcff", "\U0010ffff", "火山", "熔岩", "вулкан",
       "البركان", "ज्वालामुखी", "🌋", "🔥", "👩\u200d👩\u200d👧", "🇫🇷", "e\u0301", "İ", "ß", "ﬁ", "٣", "Ⅻ"]
ANY_CHAR = st.characters(exclude_categories=())  # every code point, lone surrogates included
PIECE = st.one_of(st.sampled_from(WORDS + SYNTAX + ODD), st.text(max_size=6), st.text(ANY_CHAR, max_size=4))
SHORT = st.one_of(st.text(), st.text(ANY_CHAR), st.lists(PIECE, max_size=12).map(" ".join),
                  st.lists(PIECE, max_size=12).map("".join))
LONG = st.one_of(  # one piece repeated up to ~20,000 characters, or up to 2,000 distinct words
    st.builds(lambda piece, n: (piece + " ") * n, PIECE.filter(bool), st.integers(50, 3000)),
    st.builds(lambda stem, n: " ".join(f"{stem}{i}" for i in range(n)), st.sampled_from(["w", "lava", "火"]),
              st.integers(MAX_QUERY_TERMS - 4, 2000)),
)
# One query in ten is long (their text vectors cost several times more; the named cases have more).
QUERIES = st.integers(0, 9).flatmap(lambda n: LONG if n == 0 else SHORT)


@pytest.fixture(scope="module")
def same_query_embedded_once(indexes, hub):
    """Both engines search the same query: its text vector is computed for the first only."""
    embedder = hub.text_embedder
    embedder.embed_query = functools.lru_cache(maxsize=2)(embedder.embed_query)
    yield
    del embedder.embed_query


@pytest.mark.slow
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=QUERIES, top_k=st.sampled_from([3, 3, 3, 10, 1, 0]))
def test_search_takes_any_string(indexes, expected, same_query_embedded_once, query, top_k):
    """Never raises (not even a VideoQAError): a list of catalogued videos with their own moments,
    from Whoosh and from Tantivy alike."""
    for engine in ENGINES:
        qa = indexes[engine]
        check_hits(qa, expected, query, qa.search(query, top_k), top_k)


# -- every case by name: the Python API --------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("query, first", [case[1:] for case in CASES], ids=IDS)
def test_search_cases(indexes, expected, engine, query, first):
    qa = indexes[engine]
    hits = qa.search(query)
    check_hits(qa, expected, query, hits, qa.settings.top_k)
    if first == EMPTY:
        assert hits == []
    elif first is not None:
        assert hits and hits[0].name == first and hits[0].channels["keyword"] > 0


@pytest.mark.parametrize("query, first", [case[1:] for case in CASES], ids=IDS)
def test_ask_cases(indexes, query, first):
    answer = indexes["whoosh"].ask(query)
    assert "\x00" not in answer.question and answer.question == answer.question.strip()
    if first == EMPTY:
        assert (answer.answer, answer.citations, answer.hits) == (NOTHING_FOUND, [], [])
    elif first is not None:
        assert answer.citations and answer.citations[0].name == first


def test_only_the_first_terms_of_a_long_query_count(indexes):
    store = indexes["whoosh"].retriever._open()[1].keywords
    junk = " ".join(f"junk{i}" for i in range(2000))
    terms = query_terms(store, junk + " lava")
    assert len(terms) == MAX_QUERY_TERMS and terms[0] == "junk0" and "lava" not in terms
    searcher = KeywordSearcher(store)
    assert searcher.search(junk + " lava") == ({}, {})  # lava is the 2001st word
    videos, moments = searcher.search("lava " + junk)
    assert videos and moments


# -- the CLI -----------------------------------------------------------------------------------

@pytest.fixture
def cli(indexes, hub, monkeypatch, capsys):
    """Runs ``videoqa`` in this process on the Whoosh index with the loaded models: (exit code, out, err)."""
    import app.qa
    from app.cli import main

    monkeypatch.setenv("VIDEOQA_INDEX_DIR", str(indexes["whoosh"].index_dir))
    monkeypatch.setenv("VIDEOQA_PROFILE", "packaged")
    monkeypatch.setattr(app.qa, "ModelHub", lambda config: hub)  # the models are loaded once for the module

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err
    return run


def printable(text: str) -> bool:
    """Nothing that a terminal would act on: only printable characters and line breaks."""
    return all(c.isprintable() or c == "\n" for c in text)


@pytest.mark.parametrize("query, first", [case[1:] for case in CASES], ids=IDS)
def test_cli_cases(cli, query, first):
    for command in ("search", "ask"):
        code, out, err = cli(command, "--json", "--", query)
        if first == EMPTY:
            assert (code, out, err.strip()) == (1, "", EMPTY_MESSAGE)
            continue
        assert (code, err) == (0, ""), err
        data = json.loads(out)
        assert out.count("\n") == 1 and "\ud800" not in out and "\udcff" not in out
        names = [h["name"] for h in data["hits"]] if command == "search" else \
            [c["name"] for c in data["citations"]]
        if first is not None:
            assert names[:1] == [first]
        code, out, err = cli(command, "--", query)
        assert code == 0 and err == "" and printable(out) and len(out) < 3000, out[:300]


def write_queries(path, lines: list[bytes]) -> None:
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")  # with a byte-order mark


def queries_file_lines() -> tuple[list[bytes], list[tuple[str, object]]]:
    """Every case as a line of a file (a line cannot hold a line break, so those become spaces;
    lone surrogates are written as the bytes that are not UTF-8 they stand for), and blank lines."""
    lines, wanted = [], []
    for _, query, first in CASES:
        text = query.replace("\n", " ").replace("\r", " ")
        lines.append(text.encode("utf-8", "surrogatepass"))
        wanted.append((text, first))
    lines += [b"", b"   ", b"\xff\xfe\xc0 lava", b"tire\r"]  # blank, blank, not UTF-8, a CRLF line
    wanted += [("", EMPTY), ("   ", EMPTY), ("\ufffd\ufffd\ufffd lava", VOLCANO), ("tire", BICYCLE)]
    return lines, wanted


def check_rows(out: str, wanted: list[tuple[str, object]]) -> None:
    """One JSON object per line of the queries file, blank lines included, in order, each with its hits."""
    rows = [json.loads(line) for line in out.split("\n")[:-1]]
    assert len(rows) == len(wanted)
    for row, (query, first) in zip(rows, wanted):
        def bare(text: str) -> str:
            return "".join(c for c in text if c != "\ufffd" and not "\ud800" <= c <= "\udfff")
        assert bare(row["query"]) == bare(query)
        if first == EMPTY:
            assert row["hits"] == []
        elif first is not None:
            assert row["hits"][0]["name"] == first, row["query"][:80]


def test_cli_queries_file(cli, tmp_path):
    lines, wanted = queries_file_lines()
    path = tmp_path / "queries.txt"
    write_queries(path, lines)
    code, out, err = cli("search", "--queries", str(path), "--json")
    assert (code, err) == (0, "")
    check_rows(out, wanted)

    code, out, err = cli("search", "--queries", str(path))
    assert (code, err) == (0, "") and printable(out)
    non_blank = [q for q, _ in wanted if q.strip()]
    assert out.count("\n## ") + out.startswith("## ") == len(non_blank)  # blank lines skipped


def test_cli_missing_queries_file(cli, tmp_path):
    code, out, err = cli("search", "--queries", str(tmp_path / "nope.txt"))
    assert code == 1 and err.count("\n") == 1 and "cannot read the queries file (No such file or directory)" in err


def run_videoqa(args: list, env: dict[str, str], stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app", *args], input=stdin, capture_output=True, timeout=300,
                          cwd=ROOT, env={**os.environ, **env, "HF_HUB_OFFLINE": "1"})


@pytest.mark.slow
def test_real_processes_take_odd_bytes(indexes, tmp_path):
    """Standard input with bytes that are not UTF-8 and arguments that are not UTF-8 (Python keeps
    them as lone surrogates): a result, no traceback, valid JSON out."""
    # keywords only: loading the text model would take most of the time (the tests above search with it)
    env = {"VIDEOQA_INDEX_DIR": str(indexes["whoosh"].index_dir), "VIDEOQA_PROFILE": "packaged",
           "VIDEOQA_SEMANTIC_WEIGHT": "0", "VIDEOQA_ANSWERER": "extractive", "VIDEOQA_RERANKER": "off"}
    lines, wanted = queries_file_lines()
    stdin = b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n"
    proc = run_videoqa(["search", "--queries", "-", "--json"], env, stdin)
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    check_rows(proc.stdout.decode("utf-8"), wanted)
    # ...and a terminal that takes only ASCII: what it cannot show is escaped (valid JSON escapes here)
    proc = run_videoqa(["ask", b"lava \xff\xfe eruption", "--json"], {**env, "PYTHONIOENCODING": "ascii"})
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr.decode(errors="replace")
    assert proc.stdout.isascii() and b"\\ufffd" in proc.stdout
    answer = json.loads(proc.stdout.decode("ascii"))
    assert answer["question"] == "lava \ufffd\ufffd eruption" and answer["citations"][0]["name"] == VOLCANO


# -- the web UI --------------------------------------------------------------------------------

def ask_over_http(url: str, question: str) -> tuple[str, list]:
    """Ask through Gradio's HTTP API as a browser would: the JSON is ASCII, a lone surrogate
    travels as ``\\ud800`` (gradio_client cannot send one). Returns the last event and its data."""
    import urllib.request

    body = json.dumps({"data": [question]}).encode("ascii")
    request = urllib.request.Request(f"{url}/gradio_api/call/ask", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        event_id = json.load(resp)["event_id"]
    with urllib.request.urlopen(f"{url}/gradio_api/call/ask/{event_id}", timeout=120) as resp:
        stream = resp.read().decode("utf-8")
    assert "Traceback" not in stream
    events = [block.split("\n") for block in stream.strip().split("\n\n")]
    last = events[-1]
    return last[0].removeprefix("event: "), json.loads(last[1].removeprefix("data: "))


@pytest.mark.slow
def test_web_ui_cases(web_server):
    """Every case posted to the running server's /ask: an answer or a plain message, never an error."""
    for name, query, first in CASES:
        event, data = ask_over_http(web_server.url, query)
        assert event == "complete", (name, event, data)
        answer, cards = data
        for html in (answer, cards):
            assert "Something went wrong" not in html and "<script>" not in html, name
        if first == EMPTY:
            assert "Type a question first" in answer, name
        elif first is not None:
            assert f"{first} @ " in answer, (name, answer[:300])
        else:
            assert "vq-answer" in answer, (name, answer[:300])
