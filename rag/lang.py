"""Which language a question is in: German or English (the two the product answers in).

py3langid ships its model inside the package; it is restricted to the two languages so
short questions are not mistaken for Dutch or Luxembourgish.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from py3langid.langid import LanguageIdentifier

_GERMAN_HINTS = re.compile(
    r"[äöüß]|\b(der|die|das|und|ist|wer|wie|wann|warum|welche[rsmn]?|wo|was|nicht|mit|von|hat)\b", re.I
)
_ENGLISH_HINTS = re.compile(r"\b(the|and|is|who|how|when|why|which|where|what|does|did|with|of|has)\b", re.I)


@lru_cache(maxsize=1)
def _identifier() -> LanguageIdentifier:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(["de", "en"])
    return ident


def detect_language(text: str) -> str:
    """'de' or 'en'; German when there is no telling (the articles are German)."""
    words = re.findall(r"\w+", text)
    if not words:
        return "de"
    de_hits = len(_GERMAN_HINTS.findall(text))
    en_hits = len(_ENGLISH_HINTS.findall(text))
    if len(words) <= 6 and de_hits != en_hits:  # the statistical model is weak on a few words
        return "de" if de_hits > en_hits else "en"
    lang, _ = _identifier().classify(text)
    return "en" if lang == "en" else "de"
