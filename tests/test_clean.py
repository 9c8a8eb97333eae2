"""index/clean.py: the general leftover rules on small synthetic pages, then the real samples."""

from __future__ import annotations

import pytest
from conftest import SAMPLE_DIR, squash

from index.clean import clean_article, find_title

BODY = "Der Stadtrat hat am Dienstag nach langer Debatte einen neuen Haushalt beschlossen."
BODY2 = "Die Opposition kritisierte vor allem die geplanten Kürzungen bei den Schulen."
CAPTION = "Bürgermeisterin Anna Schulz spricht am Dienstag vor dem Stadtrat in Kassel."

# (rule, raw page, expected cleaned paragraphs)
CASES = [
    ("exact repeated line", f"{BODY}\n{BODY2}\n{BODY}", [BODY, BODY2]),
    ("repeated line, other whitespace and case", f"{BODY}\n\n  {BODY.upper()}  \n{BODY2}", [BODY, BODY2]),
    ("caption followed by caption + credit", f"{CAPTION}\n{CAPTION}Imago / Kcna\n{BODY}", [CAPTION, BODY]),
    ("caption with © credit tail", f"{CAPTION} © dpa/Picture Alliance\n{BODY}", [CAPTION, BODY]),
    (
        "title repeated with '| Site'",
        f"Stadtrat beschließt neuen Haushalt für Kassel\n{BODY}\n"
        "Stadtrat beschließt neuen Haushalt für Kassel | Nordhessen live",
        ["Stadtrat beschließt neuen Haushalt für Kassel", BODY],
    ),
    ("print button with bullet", f"{BODY}\n  • Drucken\n{BODY2}", [BODY, BODY2]),
    ("share buttons", f"{BODY}\nTeilen\nWhatsApp\nFacebook\nE-Mail\n{BODY2}", [BODY, BODY2]),
    ("read-more header", f"{BODY}\n{BODY2}\nLesen Sie mehr zu diesen Themen:\n", [BODY, BODY2]),
    (
        "browser notice",
        f"{BODY}\n{BODY2}\nDieser Browser wird nicht mehr unterstützt\n"
        "Bitte wechseln Sie zu einem unterstützten Browser wie Chrome, Firefox, Safari oder Edge.",
        [BODY, BODY2],
    ),
    (
        "javascript notice",
        f"{BODY}\nJavaScript ist in Ihrem Browser deaktiviert. Bitte ändern Sie das.\n{BODY2}",
        [BODY, BODY2],
    ),
    (
        "javascript notice, other word order",
        f"{BODY}\nBitte aktivieren Sie JavaScript in Ihrem Browser.\n{BODY2}",
        [BODY, BODY2],
    ),
    (
        "cookie notice",
        f"Wir verwenden Cookies. Mit Klick auf OK akzeptieren Sie unsere Cookie-Einstellungen.\n{BODY}",
        [BODY],
    ),
    ("newsletter promo line", f"{BODY}\nAbonnieren Sie jetzt unseren kostenlosen Newsletter!\n{BODY2}", [BODY, BODY2]),
    (
        "newsletter promo glued to a sentence end",
        f"{BODY}- Bleiben Sie auf Stand mit dem Stadtkurier Update\n{BODY2}",
        [BODY, BODY2],
    ),
    ("live-blog promo line", f"{BODY}\nAlle Entwicklungen im Liveblog\n{BODY2}", [BODY, BODY2]),
    ("ticker promo glued after a space", f"{BODY} News und Hintergründe im Ticker.\n{BODY2}", [BODY, BODY2]),
    ("byline with colon", f"Von: Christina Denk\n{BODY}", [BODY]),
    ("byline without colon", f"Von Max Mustermann und Erika Musterfrau\n{BODY}", [BODY]),
    ("photo credit line", f"{BODY}\nFoto: Uwe Zucchi/dpa\n{BODY2}", [BODY, BODY2]),
    ("© line", f"{BODY}\n© Stadtkurier 2023\n{BODY2}", [BODY, BODY2]),
    ("date line", f"Aktualisiert am 12.09.2023, 14:31 Uhr\n{BODY}", [BODY]),
    ("lone dash line", f"{BODY}\n-\n{BODY2}", [BODY, BODY2]),
    (
        "list item scraped twice",
        "Technische Hilfen : Russland hilft Nordkorea seit 2019 bei der Entwicklung neuer Waffen.\n"
        ": Russland hilft Nordkorea seit 2019 bei der Entwicklung neuer Waffen. Wirtschaftliche Hilfen : Mehr Weizen.",
        [
            "Technische Hilfen : Russland hilft Nordkorea seit 2019 bei der Entwicklung neuer Waffen.",
            "Wirtschaftliche Hilfen : Mehr Weizen.",
        ],
    ),
    (
        "trailing 'more on this:' block",
        f"{BODY}\n{BODY2}\n{CAPTION}\nAktuelle Meldungen zum Haushalt finden Sie hier:\nHaushalt Kassel",
        [BODY, BODY2, CAPTION],
    ),
]


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_removes_leftover(raw: str, expected: list[str]) -> None:
    assert clean_article(raw).text.split("\n\n") == expected


# Real text that looks a little like boilerplate and must stay.
KEEP = [
    ("sentence starting with 'Von'", "Von Berlin aus reiste die Delegation am Abend weiter nach Warschau."),
    (
        "long paragraph mentioning a podcast",
        "Der Sender startete im Frühjahr einen Podcast über die Kommunalpolitik, in dem Bürgerinnen und Bürger "
        "aus allen Stadtteilen zu Wort kommen und über ihre Erfahrungen mit der Verwaltung, den Schulen, den "
        "Buslinien und den Baustellen berichten, die sie seit Jahren beschäftigen.",
    ),
    ("short sentence repeated in another paragraph", "Das bestätigte er. Dann ging er."),
    ("word 'Drucken' inside a sentence", "Drucken ließ die Stadt die Plakate in einer Werkstatt in Kassel."),
    ("quote with 'Browser'", "Der Browser des Ministers sei veraltet gewesen, sagte ein Sprecher."),
]


@pytest.mark.parametrize("line", [c[1] for c in KEEP], ids=[c[0] for c in KEEP])
def test_real_text_is_kept(line: str) -> None:
    cleaned = clean_article(f"{BODY}\n{line}\n{BODY2}").text.split("\n\n")
    assert cleaned == [BODY, line, BODY2]


def test_paragraphs_are_separated_by_one_blank_line_and_spaces_normalized() -> None:
    body2 = BODY2.replace(" ", "\u00a0", 2)  # no-break spaces become plain ones
    cleaned = clean_article(f"  {BODY}\r\n\r\n\r\n{body2}\t\n")
    assert cleaned.text == f"{BODY}\n\n{BODY2}"


# ----- title detection
@pytest.mark.parametrize(
    ("raw", "hint", "title"),
    [
        ("Stadtrat beschließt neuen Haushalt für Kassel\n" + BODY, "", "Stadtrat beschließt neuen Haushalt für Kassel"),
        (
            "Kassel-Haushalt\nStadtrat beschließt neuen Haushalt für Kassel\n" + BODY,
            "",
            "Stadtrat beschließt neuen Haushalt für Kassel",
        ),  # short kicker passed over
        (BODY + "\n" + BODY2, "", BODY),  # no headline: the first sentence
        ("Stadtrat beschließt neuen Haushalt für Kassel\n" + BODY, "Haushalt beschlossen", "Haushalt beschlossen"),
    ],
    ids=["headline", "kicker-then-headline", "first-sentence", "title-hint-wins"],
)
def test_title(raw: str, hint: str, title: str) -> None:
    assert clean_article(raw, hint).title == title


def test_find_title_shortens_a_very_long_first_sentence() -> None:
    long = "Der " + " ".join(["sehr"] * 60) + " lange Satz endet hier."
    title = find_title([long])
    assert title.endswith(" …") and len(title) <= 160


# ----- the five sample articles
LEFTOVERS = {
    "000_adb08db0fa087bf0.txt": [
        "Drucken",
        "Imago / Kcna",
        "Lesen Sie mehr zu diesen Themen",
        "Dieser Browser wird nicht mehr unterstützt",
        "Bitte wechseln Sie",
    ],
    "001_8dbe49e802ff1033.txt": ["| ZDFheute live"],
    "002_982e29be4fc97f92.txt": ["Von: Christina Denk", "© Kcna/AFP"],
    "003_314c77a133a9acd5.txt": [],
    "004_7f32bc9d79f56e77.txt": ["Bleiben Sie auf Stand", "als Newsletter", "Liveblog", "im Ticker", "\n-\n"],
}

KEPT = {
    "000_adb08db0fa087bf0.txt": [
        "Rund 700 Eisenbahnkilometer trennten Kim Jong-un von seinem Comeback auf der diplomatischen Weltbühne.",
        "Interessant für Russland wären vor allem Kurzstrecken-Raketen, etwa vom Typ KN-23, die dem russischen "
        "Iskander-Raketensystem sehr ähnlich sind.",
        "vermutet Joseph Dempsey von der Denkfabrik International Institute für Strategic Studies (IISS).",
    ],
    "001_8dbe49e802ff1033.txt": [
        "„Ich bestätige das“, sagte Kremlsprecher Dmitri Peskow.",
        "Darüber diskutiert ZDFheute live mit der Korea-Expertin Tereza Novotná",
    ],
    "002_982e29be4fc97f92.txt": [
        "Moskau – Am Dienstagmorgen (12. September) rollte der gepanzerte, grüne Zug",
        "Die nordkoreanische Nachrichtenagentur veröffentlichte Bilder von Kim Jong Un bei der Abfahrt "
        "am 10. September Richtung Russland.",
        "Russland hilft Nordkorea seit 2019 seine nukleare und waffentechnische Entwicklung voranzutreiben.",
        "Nach der langen Corona-Isolation Nordkoreas hat sich die Narungsmittelknappheit verschärft.",
        "Indes geht der ukrainische Geheimdienst davon aus, dass Russland nur noch maximal ein Jahr durchhält.",
    ],
    "003_314c77a133a9acd5.txt": [
        "Im Juli warnte Präsident Biden, dass der Ukraine die Munition ausgehe.",
        "„Russland verfügt über die Militärtechnologie, die Kim für seine illegalen Satellitenstarts und "
        "Nuklearwaffenträgersysteme benötigt.“",
    ],
    "004_7f32bc9d79f56e77.txt": [
        "Das Gefährt könne bis zu zehn Raketen mit Nuklearsprengköpfen tragen und abfeuern.",
        "Kim und Putin können sich derzeit nicht leisten, Xi Jinping zu verärgern.",
        "Seit Februar 2022 führt Russland einen Angriffskrieg gegen die Ukraine.",
    ],
}

TITLES = {
    "000_adb08db0fa087bf0.txt": (
        "Diktator Kim Jong-un buhlt um Waffenkunden — und Kremlchef Wladimir Putin verteidigt Donald Trump"
    ),
    "001_8dbe49e802ff1033.txt": "Waffen und Munition aus Nordkorea: Wie gefährlich ist das Putin-Kim-Bündnis?",
    "003_314c77a133a9acd5.txt": "Warum Kim Jong Uns Reise nach Russland um Waffen geht",
}


@pytest.mark.parametrize("name", sorted(KEPT))
def test_sample_article_loses_leftovers_and_keeps_sentences(name: str) -> None:
    raw = (SAMPLE_DIR / name).read_text(encoding="utf-8")
    cleaned = clean_article(raw)
    for leftover in LEFTOVERS[name]:
        assert leftover not in cleaned.text, leftover
    for sentence in KEPT[name]:
        assert cleaned.text.count(sentence) == 1, sentence  # kept, and only once
    # Cleaning only removes: every cleaned paragraph is a piece of the raw page.
    flat = squash(raw)
    for paragraph in cleaned.text.split("\n\n"):
        assert squash(paragraph) in flat, paragraph
    # ... and it removes little: the article's words stay.
    assert len(squash(cleaned.text)) > 0.8 * len(flat)
    if name in TITLES:
        assert cleaned.title == TITLES[name]


def test_sample_titles_appear_once() -> None:
    text = clean_article((SAMPLE_DIR / "001_8dbe49e802ff1033.txt").read_text(encoding="utf-8")).text
    assert text.count("Wie gefährlich ist das Putin-Kim-Bündnis?") == 1
