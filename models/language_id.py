"""Which language a text is written in: py3langid, restricted and leaning to English.

One rule serves the by-language text embedder (models/language_embedder.py: MiniLM for English
texts, USE for the rest) and the keyword analyzer (indexer/analysis.py: which stemmer and stop
words a text gets). py3langid (BSD; its model is inside the wheel) chooses among
:data:`LANGUAGES`, the languages of the multilingual Universal Sentence Encoder, and a text
counts as English unless another language is named with a probability of at least
:data:`ENGLISH_BELOW`: a short English text taken for another language would lose what
English search is best with (MiniLM, Porter's stems). Measured on every question of the
evaluation sets and every moment of their indexes (docs/EVALUATION.md): the English texts
taken for another language get at most 0.43 (revenue 4.2 million: fr), the non-English ones
at least 0.74 (暴雨预警: zh).
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["LANGUAGES", "ENGLISH_BELOW", "identify", "language_of"]

# The languages of USE multilingual v3 (Chinese in both scripts is py3langid's "zh"): the candidates.
LANGUAGES = ("ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh")
# A text is English unless another language has at least this probability.
ENGLISH_BELOW = 0.6

_lock = threading.Lock()
_identifier: Any = None


def _loaded() -> Any:
    global _identifier
    if _identifier is None:
        with _lock:
            if _identifier is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                identifier.set_languages(list(LANGUAGES))
                _identifier = identifier
    return _identifier


def identify(text: str) -> tuple[str, float]:
    """(language code, probability) py3langid gives ``text`` among :data:`LANGUAGES`."""
    identifier = _loaded()
    with _lock:  # one identifier, shared by threads; its classify is cheap
        lang, prob = identifier.classify(text)
    return str(lang), float(prob)


def language_of(text: str, english_below: float = ENGLISH_BELOW) -> str:
    """``"en"`` unless another language is named with probability >= ``english_below`` (and for
    empty text); otherwise that language's code."""
    if not text.strip():
        return "en"
    lang, prob = identify(text)
    return lang if prob >= english_below else "en"
