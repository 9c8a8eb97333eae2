"""Take scraping leftovers out of an article's text and find its title.

General rules for news pages, not a list for particular files:
- exact repeated lines (title and caption printed twice), and a line that repeats an
  earlier line plus a short tail (a caption followed by its photo credit, a title
  followed by "| Site name");
- sentences repeated from the lines just before (list items scraped twice);
- page UI lines (print/share buttons, "read more" headers, browser and cookie notices),
  bylines and photo credits;
- promotion lines (newsletter, live blog, app, subscription calls to action), also when
  glued to the end of a real sentence;
- a trailing block introduced by a "more on this" line ending in a colon.

What it leaves: the article's words in their order, one paragraph per line, blank
line between paragraphs. Every offset in the product points into this cleaned text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Lines that are page UI when they stand alone (compared lowercased, without punctuation).
_UI_LINES = {
    "drucken",
    "teilen",
    "merken",
    "speichern",
    "kommentare",
    "kommentieren",
    "print",
    "share",
    "tweet",
    "e-mail",
    "email",
    "mail",
    "whatsapp",
    "facebook",
    "twitter",
    "x",
    "linkedin",
    "pinterest",
    "telegram",
    "artikel anhören",
    "vorlesen",
    "zur startseite",
    "nach oben",
    "zurück",
    "weiter",
    "anzeige",
    "werbung",
    "advertisement",
    "mehr anzeigen",
    "schließen",
    "menü",
    "menu",
    "suche",
    "search",
    "login",
    "anmelden",
    "abonnieren",
    "subscribe",
    "sign in",
    "lesen sie auch",
    "mehr zum thema",
    "auch interessant",
    "zum thema",
    "themen",
    "schlagworte",
    "tags",
    "related",
    "read more",
    "weitere artikel",
    "video",
    "audio",
    "lesen sie mehr zu diesen themen",
    "das könnte sie auch interessieren",
    "empfehlungen",
    "zur übersicht",
    "alle artikel",
    "kopiert",
    "link kopieren",
    "feedback",
}

_UI_PATTERNS = [
    re.compile(p, re.I)
    for p in (
        r"\b(browser|javascript)\b.{0,80}\b(nicht (mehr )?unterstützt|deaktiviert|aktivieren|"
        r"not supported|no longer supported|enable|disabled)\b",
        r"\bbitte wechseln sie zu einem\b.{0,40}\bbrowser\b",
        r"\b(aktivieren sie|bitte aktivieren|please enable|enable)\b.{0,40}\bjavascript\b",
        r"\b(switch|upgrade) to a (supported|modern|newer) browser\b",
        r"\bcookies?\b.{0,100}\b(akzeptieren|zustimmen|einwilligung|einstellungen|accept|consent)\b",
        r"\balle rechte vorbehalten\b|\ball rights reserved\b",
        r"^(foto|fotos|bild|bilder|photo|image|quelle|grafik|credit|credits)\s*:\s*\S.{0,80}$",
        r"^©",
        r"^(von|by|autor|author|autorin)\s*:?\s*[A-ZÄÖÜ][\w.\-]+( [A-ZÄÖÜ][\w.\-]+){0,3}"
        r"( und [A-ZÄÖÜ][\w.\-]+( [A-ZÄÖÜ][\w.\-]+){0,2})?$",
        r"^(aktualisiert|veröffentlicht|updated|published|stand)\s*:?\s*(am\s*)?\d{1,2}\.",
    )
]

_PROMO_TERMS = re.compile(
    r"\b(newsletter|liveblog|live-blog|live-ticker|liveticker|newsticker|im ticker|podcast|"
    r"push-mitteilung|push-nachricht|unsere app|app herunterladen|abonnieren|abonnement|abo\b|"
    r"subscribe|sign up|download our app)",
    re.I,
)
_CALL_TO_ACTION = re.compile(
    r"\b(bleiben sie|abonnieren sie|melden sie sich|folgen sie uns|laden sie|lesen sie (auch|mehr|hier)|"
    r"hier (klicken|lesen|weiterlesen)|jetzt (abonnieren|anmelden|lesen|testen|herunterladen)|"
    r"sign up|subscribe|follow us|click here|read more)\b",
    re.I,
)
_CREDIT_TAIL = re.compile(r"\s*©\s*[\w /.,&+'-]{1,60}$")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?…\"“”])\s+(?=[-–—]?\s*[\"„“A-ZÄÖÜ0-9])")
_BULLET = re.compile(r"^[\s•·▪►▶*\-–—|]+")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")

MAX_PROMO_WORDS = 30  # a promotion is a short line; a long paragraph mentioning a podcast is text
MAX_REPEAT_TAIL = 40  # "<earlier line><tail>" is a repeat when the tail is this short
MIN_REPEATED_SENTENCE = 40  # shorter repeated sentences can be legitimate ("Das bestätigte er.")
TRAILING_BLOCK_CHARS = 600  # largest block dropped after a "more on this:" line near the end


@dataclass(frozen=True)
class Cleaned:
    title: str
    text: str


def clean_article(raw: str, title_hint: str = "") -> Cleaned:
    """Cleaned text (paragraphs separated by a blank line) and the article's title."""
    lines = _normalize(raw)
    lines = _drop_repeats(lines)
    lines = [line for line in (_strip_inline_noise(x) for x in lines) if line and not _is_boilerplate(line)]
    lines = _drop_trailing_block(lines)
    title = title_hint.strip() or find_title(lines)
    return Cleaned(title=title, text="\n\n".join(lines))


def _normalize(raw: str) -> list[str]:
    text = unicodedata.normalize("NFC", raw.replace("\r\n", "\n").replace("\r", "\n"))
    text = text.replace("\ufeff", "").replace("\u00ad", "")  # BOM, soft hyphen
    out = []
    for line in text.split("\n"):
        line = _SPACES.sub(" ", line).strip()
        if line:
            out.append(line)
    return out


def _key(line: str) -> str:
    return re.sub(r"\W+", " ", line.lower()).strip()


def _drop_repeats(lines: list[str]) -> list[str]:
    """Remove exact repeats, repeats with a short tail, and sentences repeated from just before."""
    seen: set[str] = set()
    kept: list[str] = []
    for line in lines:
        key = _key(line)
        if not key or key in seen:
            continue
        if any(_is_prefix_repeat(line, earlier) for earlier in kept[-3:]) or any(
            _is_prefix_repeat(line, earlier) for earlier in kept[:3]
        ):
            continue
        line = _drop_repeated_sentences(line, kept[-2:])
        if not line:
            continue
        seen.add(key)
        kept.append(line)
    return kept


def _is_prefix_repeat(line: str, earlier: str) -> bool:
    return (
        len(earlier) >= 20
        and line != earlier
        and line.startswith(earlier)
        and len(line) - len(earlier) <= MAX_REPEAT_TAIL
    )


def _drop_repeated_sentences(line: str, previous: list[str]) -> str:
    if not previous:
        return line
    context = " ".join(previous)
    parts = _SENTENCE_SPLIT.split(line)
    kept = []
    for part in parts:
        core = part.strip().lstrip(":;,-–— ").strip()
        if len(core) >= MIN_REPEATED_SENTENCE and core in context:
            continue
        kept.append(part.strip())
    text = " ".join(p for p in kept if p)
    return text.lstrip(":;, ").strip() if len(kept) != len(parts) else line


def _strip_inline_noise(line: str) -> str:
    line = _BULLET.sub("", line).strip() if _BULLET.match(line) and len(line.split()) <= 4 else line
    line = _CREDIT_TAIL.sub("", line).strip()
    # A promotion glued to the end of a sentence: "… zu verärgern.- Bleiben Sie auf Stand mit …"
    parts = re.split(r"(?<=[.!?])\s*[-–—]?\s+(?=[A-ZÄÖÜ])|(?<=[.!?])[-–—]\s*(?=[A-ZÄÖÜ])", line)
    if len(parts) > 1 and _is_promo(parts[-1]):
        line = line[: len(line) - len(parts[-1])].rstrip(" -–—")
    return line.strip()


def _is_promo(text: str) -> bool:
    words = len(text.split())
    return words <= MAX_PROMO_WORDS and bool(_PROMO_TERMS.search(text) or _CALL_TO_ACTION.search(text))


def _is_boilerplate(line: str) -> bool:
    bare = re.sub(r"[^\w\s-]", "", line.lower()).strip()
    if bare in _UI_LINES:
        return True
    if len(line.split()) <= MAX_PROMO_WORDS and any(p.search(line) for p in _UI_PATTERNS):
        return True
    return _is_promo(line)


def _drop_trailing_block(lines: list[str]) -> list[str]:
    """Drop a short trailing block announced by a line ending in ':' in the article's last part."""
    total = sum(len(x) for x in lines)
    seen = 0
    for i, line in enumerate(lines):
        seen += len(line)
        if i == 0 or seen < total * 0.6 or not line.endswith(":"):
            continue
        rest = sum(len(x) for x in lines[i + 1 :])
        if rest <= TRAILING_BLOCK_CHARS and len(line.split()) <= MAX_PROMO_WORDS:
            return lines[:i]
    return lines


def find_title(lines: list[str]) -> str:
    """The first headline-like line (5-25 words, no closing full stop) near the top, else
    the first sentence. Short kickers ("Russland-Nordkorea") are passed over."""
    for line in lines[:4]:
        if 5 <= len(line.split()) <= 25 and not line.endswith("."):
            return line
    if not lines:
        return ""
    first = _SENTENCE_SPLIT.split(lines[0])[0]
    return first if len(first) <= 160 else first[:157].rsplit(" ", 1)[0] + " …"
