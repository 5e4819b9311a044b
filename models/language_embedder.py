"""MiniLM between English texts, the multilingual USE for every other pair: one vector space.

all-MiniLM-L6-v2 is the better English embedder and the multilingual Universal Sentence
Encoder the one that matches texts across languages (docs/EVALUATION.md). A weighted sum of
both (``text_embedder = "combined"``) gains cross-lingual questions but loses English ones at
every weight. This backend does not mix them: a question and a moment that are both English
score MiniLM's cosine, any other pair USE's, and still one inner product gives the score, so
the vector index (FAISS, inner product) is unchanged.

The layout, with M a text's MiniLM unit vector and U its USE unit vector, in three blocks
(MiniLM's, USE's, USE's again)::

    English moment    [M/√2, 0,  U/√2]      English question   [√2·M, U,  0  ]
    other moment      [0,    U,  0   ]      other question     [0,    U,  √2·U]

English·English = cos_M; English question·other moment = cos_U (second block); other
question·English moment = cos_U (third block); other·other = cos_U (second block). Moment
vectors have unit length; question vectors do not (as with ``combined``). A moment in another
language is embedded by USE alone, a question in another language too.

Which texts are English is decided from the text by :func:`models.language_id.language_of`
(py3langid restricted to USE's languages, leaning to English: a text is English unless another
language is named with a probability of at least :data:`ENGLISH_BELOW`, because a short English
question taken for another language would lose MiniLM, which is what English search is best
with). The text decides for transcripts too, rather than Whisper's language:
on every speech moment of the evaluation indexes the two agree (docs/EVALUATION.md), and
on-screen text has no language of its own; one rule serves both, and questions, and the role's
interface stays as it is.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from models.combined_embedder import TextEmbedderPair
from models.errors import ConfigError
from models.language_id import ENGLISH_BELOW, LANGUAGES, identify, language_of

__all__ = ["LanguageAwareTextEmbedder", "LANGUAGE_AWARE_MODEL", "USE_LANGUAGES", "ENGLISH_BELOW"]

LANGUAGE_AWARE_MODEL = "sentence-transformers|use-numpy"  # the English part | the part for everything else
USE_LANGUAGES = LANGUAGES  # the identifier's candidates are USE's languages

_ROOT2 = float(np.sqrt(2.0))


class LanguageAwareTextEmbedder(TextEmbedderPair):
    """Text vectors whose inner product is MiniLM's cosine when question and moment are both
    English, USE's otherwise.

    Options: ``english_below`` (the probability another language needs before a text counts as
    not English; default :data:`ENGLISH_BELOW`), and any option of the parts.
    """

    backend_name = "by-language"
    separator = "|"
    example = LANGUAGE_AWARE_MODEL

    def __init__(self, model: str | None = None, *, english_below: float = ENGLISH_BELOW, **options: Any):
        super().__init__(model, **options)
        if not 0.0 < float(english_below) <= 1.0:
            raise ConfigError(f"by-language text embedder: english_below must be in (0, 1], not {english_below}")
        self.english_below = float(english_below)

    @staticmethod
    def language(text: str) -> tuple[str, float]:
        """(language code, probability) py3langid gives ``text`` among :data:`USE_LANGUAGES`."""
        return identify(text)

    def is_english(self, text: str) -> bool:
        """True unless another language is named with probability >= ``english_below`` (and for empty text)."""
        return language_of(text, self.english_below) == "en"

    @property
    def dim(self) -> int:
        english, other = self.parts
        return english.dim + 2 * other.dim

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.load()
        english_part, other_part = self.parts
        m, u = english_part.dim, other_part.dim
        out = np.zeros((len(texts), m + 2 * u), dtype=np.float32)
        if not texts:
            return out
        english = np.array([self.is_english(t) for t in texts], dtype=bool)
        use = other_part.embed_documents(texts)  # every text needs USE's vector
        out[~english, m:m + u] = use[~english]
        if english.any():  # only English texts need MiniLM's
            out[english, :m] = english_part.embed_documents([t for t, e in zip(texts, english) if e]) / _ROOT2
            out[english, m + u:] = use[english] / _ROOT2
        return out

    def embed_query(self, text: str) -> np.ndarray:
        """The question vector: its inner product with a moment vector is cos_MiniLM between two English
        texts, cos_USE otherwise."""
        self.load()
        english_part, other_part = self.parts
        m, u = english_part.dim, other_part.dim
        out = np.zeros(m + 2 * u, dtype=np.float32)
        use = other_part.embed_query(text)
        out[m:m + u] = use
        if self.is_english(text):
            out[:m] = english_part.embed_query(text) * _ROOT2
        else:
            out[m + u:] = use * _ROOT2
        return out

    def info(self) -> dict[str, Any]:
        return {**super().info(), "english_below": self.english_below, "identifier": "py3langid"}
