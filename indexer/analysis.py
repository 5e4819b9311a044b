"""The keyword analyzer: how transcripts, descriptions, titles and queries become terms.

One analyzer serves indexing (Whoosh uses it as its analyzer, Tantivy indexes the terms it
writes), queries and highlighting, so they always agree:

* Traditional Chinese is folded to Simplified (OpenCC ``t2s``), character for character, so
  the offsets still point into the original text: Whisper often writes Mandarin in
  Traditional characters, people type Simplified, and both must match.
* Runs of CJK characters are segmented into words by jieba in its search mode (words and
  the shorter words inside them: 广州市 gives 广州, 州市, 广州市), since a run of Chinese
  characters has no spaces to split at.
* Everything else is split into words, lowercased, stripped of English stop words and
  question words, and stemmed by the language of its line: each line's language is named by
  :func:`models.language_id.language_of` (py3langid among USE's languages, English unless
  another language has a probability of at least 0.6, the rule of the by-language text
  embedder). English, and a language Whoosh has no stemmer for, keep Porter's stems as before;
  German, French, Spanish, Italian, Dutch, Portuguese and Russian lines get that language's
  Snowball stemmer (``whoosh.lang``), so "dazugehörige" and "dazugehörigen"
  are one term. The stop words stay the English and Chinese ones for every line: dropping a
  line language's own stop words too was measured, and lost a German question on the tune
  split (docs/EVALUATION.md). The text decides rather than Whisper's language so that
  documents, questions and highlighting, which see only text, always agree; a video's text is
  its moments one per line, so each moment is stemmed the same way in the video's document as
  in its own.

Bump :data:`ANALYZER_VERSION` when the terms change: derived indexes are then rebuilt.
"""

from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache
from typing import Any, Callable, Iterator

from whoosh.analysis import Filter, LowercaseFilter, Token, Tokenizer
from whoosh.lang import has_stemmer, stemmer_for_language
from whoosh.lang.porter import stem as porter_stem

from models.language_id import language_of

__all__ = ["ANALYZER_VERSION", "STOP_WORDS", "MixedTokenizer", "LanguageFilter", "analyzer", "analyzed",
           "to_simplified", "line_language", "CJK"]

log = logging.getLogger(__name__)

# lang-2: English clitics after an apostrophe are dropped; lang-1: Snowball stems by the line's language;
# cjk-1: jieba and OpenCC
ANALYZER_VERSION = "lang-2"
# What an apostrophe leaves of an English clitic ("it's", "nation's", "don't", "we'll", "I'm"): not a word.
# A question with a possessive matched every transcript that says "it's" (issue 13, session 11). Only
# after an apostrophe: "vitamin D" and "T cells" keep their letter.
_CLITICS = frozenset("s t d ll re ve m".split())
_APOSTROPHES = ("'", "\u2019")

# Whoosh's English stop words plus the question and function words that questions are
# made of: "what is love" must not match every transcript that says "what".
STOP_WORDS = frozenset("""
a about above after again all also am an and any are as at be because been before being below between both
but by can could did do does doing done during each few for from further had has have having he her here
hers him his how i if in into is it its itself just me more most my no nor not now of off on once only or
other our ours out over own please same she should so some such tbd tell than that the their theirs them
then there these they this those through to too under until up us very was we were what when where which
while who whom why will with would yet you your yours
""".split()) | frozenset(
    # Chinese function and question words (what questions are made of, in Simplified form)
    "的 了 是 在 吗 呢 吧 啊 和 与 及 或 就 都 也 还 又 什么 怎么 怎样 如何 为什么 哪 哪里 哪儿 哪个 谁 多少 几 "
    "这 那 这个 那个 有 没有 我 你 他 她 它 我们 你们 他们 请 说 讲 提到 视频 里 中".split())

# CJK Unified Ideographs (with extension A and compatibility ideographs), kana and hangul
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
_WORD = rf"[^\W{CJK}]"  # a word character of a script written with spaces
_RUNS = re.compile(rf"([{CJK}]+)|({_WORD}+(?:\.?{_WORD}+)*)")
_LINES = re.compile(r"[^\n]+")
_SPACED_WORD = re.compile(_WORD)
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

_lock = threading.Lock()
_converter: Any = None
_jieba: Any = None
_ANALYZER: Any = None


def to_simplified(text: str) -> str:
    """``text`` with Traditional Chinese characters folded to Simplified, same length and offsets."""
    global _converter
    if not _HAN.search(text):
        return text
    if _converter is None:
        import opencc

        with _lock:
            _converter = _converter or opencc.OpenCC("t2s")
    out = _converter.convert(text)
    if len(out) != len(text):  # a phrase conversion changed the length: fold character by character
        out = "".join(folded if len(folded := _converter.convert(ch)) == 1 else ch for ch in text)
    return out


def _segmenter() -> Any:
    global _jieba
    if _jieba is None:
        with _lock:
            if _jieba is None:
                import jieba

                from models.base import default_cache_dir

                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                cache = default_cache_dir() / "jieba"
                cache.mkdir(parents=True, exist_ok=True)
                tokenizer.tmp_dir = str(cache)  # its dictionary cache: ours, not a shared /tmp file
                tokenizer.initialize()
                _jieba = tokenizer
    return _jieba


@lru_cache(maxsize=16384)  # a video's document repeats its moments' lines: each is identified once
def line_language(line: str) -> str:
    """The language a line's words are stemmed in: :func:`models.language_id.language_of`, or
    ``"en"`` when it has no word of a script written with spaces (only those are stemmed)."""
    return language_of(line) if _SPACED_WORD.search(line) else "en"


@lru_cache(maxsize=None)
def _stemmer(language: str) -> Callable[[str], str]:
    """Whoosh's Snowball stemmer of ``language``, or Porter's for English and where Whoosh has
    none that works: its Arabic stemmer fails on Python 3 (a regular expression ``re`` rejects)
    and it names Turkish but has no stemmer for it."""
    if language == "en" or not has_stemmer(language):
        return porter_stem
    try:
        stemmer = stemmer_for_language(language)
        stemmer("test")
    except Exception as exc:  # noqa: BLE001 - any failure of Whoosh's stemmer: keep Porter's stems
        log.debug("no working Whoosh stemmer for %r (%s): Porter's stems", language, exc)
        return porter_stem
    return stemmer


@lru_cache(maxsize=50_000)
def _stem(language: str, word: str) -> str:
    return _stemmer(language)(word)


class MixedTokenizer(Tokenizer):
    """Words of any script; CJK runs segmented by jieba (search mode), Traditional folded to Simplified."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))

    def __call__(self, value: str, positions: bool = False, chars: bool = False, keeporiginal: bool = False,
                 removestops: bool = True, start_pos: int = 0, start_char: int = 0, tokenize: bool = True,
                 mode: str = "", **kwargs: Any) -> Iterator[Token]:
        token = Token(positions, chars, removestops=removestops, mode=mode, **kwargs)
        if not tokenize:
            token.original = token.text = value
            token.boost, token.stopped = 1.0, False
            if positions:
                token.pos = start_pos
            if chars:
                token.startchar, token.endchar = start_char, start_char + len(value)
            yield token
            return
        text = to_simplified(value)
        pos = start_pos
        for line in _LINES.finditer(text):  # (no word runs across a line break)
            language = line_language(line.group())
            for start, end, word, cjk in self._pieces(line.group(), line.start()):
                token.text = word
                token.language = "en" if cjk else language  # jieba's words: Porter's stems, as before
                token.boost, token.stopped = 1.0, False
                if keeporiginal:
                    token.original = value[start:end]
                if positions:
                    token.pos = pos
                    pos += 1
                if chars:
                    token.startchar, token.endchar = start_char + start, start_char + end
                yield token

    @staticmethod
    def _pieces(text: str, offset: int) -> Iterator[tuple[int, int, str, bool]]:
        """(start, end, word, is CJK) of the words of ``text``, offsets shifted by ``offset``."""
        for match in _RUNS.finditer(text):
            if match.group(1):
                base = offset + match.start(1)
                for word, start, end in _segmenter().tokenize(match.group(1), mode="search"):
                    if word.strip():
                        yield base + start, base + end, word, True
            elif not (match.group(2).lower() in _CLITICS and text[match.start(2) - 1:match.start(2)] in _APOSTROPHES):
                yield offset + match.start(2), offset + match.end(2), match.group(2), False


class LanguageFilter(Filter):
    """Drops :data:`STOP_WORDS` and stems each token by its ``language`` (set by
    :class:`MixedTokenizer`): what Whoosh's ``StopFilter(minsize=1) | StemFilter()`` did, with
    the language's stemmer in place of Porter's."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))

    def __call__(self, tokens: Iterator[Token]) -> Iterator[Token]:
        pos = None
        for t in tokens:
            if t.text and t.text not in STOP_WORDS:
                if t.positions:  # positions counted without the stop words, as StopFilter does
                    if pos is None:
                        pos = t.pos
                    else:
                        pos += 1
                        t.pos = pos
                t.stopped = False
                t.text = _stem(getattr(t, "language", "en"), t.text)
                yield t
            elif not t.removestops:
                t.stopped = True
                yield t


def analyzer() -> Any:
    """The Whoosh analyzer of keyword text (a callable yielding tokens), built once."""
    global _ANALYZER
    if _ANALYZER is None:
        _ANALYZER = MixedTokenizer() | LowercaseFilter() | LanguageFilter()
    return _ANALYZER


def analyzed(text: str) -> str:
    """``text`` as the space-separated terms of :func:`analyzer` (what Tantivy indexes)."""
    return " ".join(t.text for t in analyzer()(text) if t.text)
