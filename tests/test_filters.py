"""Filters (outlet, source, date range) through every interface: the Python API, the CLI,
the HTTP API and llama-index ``MetadataFilters``, all over the news fixture corpus in a
real Chroma store with the real BM25 index (fake embedder).

The point of pushing the filters down: with a selective filter, top-k stays full. The
store is set up so that post-filtering would starve: ``candidates`` is as small as k, and
the filtered outlet's chunks are not among the unfiltered best.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters

from index.keyword import KeywordIndex
from rag.api import Pipeline
from rag.errors import BadInput
from rag.filters import make_filters
from rag.llama import NewsRetriever, filters_from_llama
from rag.server import create_app
from rag.settings import Settings
from rag.types import ArticleMeta, Filters
from tests.news_corpus import BRIDGE, EXPECTED, NEWS_DIR, POOL
from tests.server_support import LiveServer

K = 5
BRIDGE_Q = "Wie lang ist die Umleitung wegen der gesperrten Havelbrücke in Rathenow?"
POOL_Q = "Wie viel kostet das neue Hallenbad in Cottbus?"
STORE_OPTIONS = {"embedder": "fake", "generator": "extractive", "chunk_size": 40, "chunk_overlap": 0, "candidates": K}


def options(base: Path, **more: object) -> dict:
    return {"store": base / "store", "cache_dir": base / "cache", **STORE_OPTIONS, **more}


@pytest.fixture(scope="module")
def news(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """The fixture corpus, indexed once (read-only for the tests)."""
    base = tmp_path_factory.mktemp("news")
    with Pipeline(Settings(**options(base))) as pipeline:
        report = pipeline.index([NEWS_DIR])
        assert sorted(report.added) == sorted(EXPECTED) and report.failed == []
        yield pipeline


def admitted(pipeline: Pipeline, filters: Filters) -> set[str]:
    return {s for s, info in pipeline.store.articles().items() if filters.admits(s, info.meta)}


# ----- k stays full under a selective filter (every retrieval mode)
# Keyword-only search returns only chunks that share a term with the question: three of
# Radio Nordost's seven chunks do, so its k is 3.
@pytest.mark.parametrize(("mode", "k"), [("hybrid", K), ("dense", K), ("keyword", 3)])
def test_selective_filter_keeps_k_full(news: Pipeline, mode: str, k: int) -> None:
    with Pipeline(Settings(**{**news.settings.model_dump(), "retrieval": mode})) as pipeline:
        nordost = Filters(outlets=("radio nordost",))  # any case
        passages = pipeline.retrieve(BRIDGE_Q, k, filters=nordost)
        assert len(passages) == k
        assert {p.meta.outlet for p in passages} == {"Radio Nordost"}
        # selective: unfiltered, the same number of candidates holds fewer than k of these chunks,
        # so filtering the results afterwards would have returned fewer than k
        unfiltered = pipeline.retrieve(BRIDGE_Q, k)
        assert sum(p.meta.outlet == "Radio Nordost" for p in unfiltered) < k
        # and the store holds more than k of them: the filter chose among all, not among the best
        chunks = pipeline.store.chunk_ids_for(sorted(admitted(pipeline, nordost)))
        assert len(chunks) > K


def test_date_range_and_undated(news: Pipeline) -> None:
    january = make_filters(since="2024-01", until="2024-01")
    passages = news.retrieve(POOL_Q, K, filters=january)
    assert len(passages) == K
    assert all("2024-01-01" <= p.meta.date[:10] <= "2024-01-31" for p in passages)
    # an undated article never passes a date filter, however well it matches
    letter = "leserbrief-radweg.txt"
    assert news.retrieve("Radweg nach Falkensee", 3, source=letter)[0].source == letter
    assert all(p.source != letter for p in news.retrieve("Radweg nach Falkensee", K, since="1900"))
    # a day filter compares the article's date (publication, else last update)
    stand_only = news.retrieve(
        BRIDGE_Q, K, source="radio-nordost-havelbruecke.txt", since="2023-09-12", until="2023-09-12"
    )
    assert stand_only and stand_only[0].meta.published == "" and stand_only[0].meta.updated.startswith("2023-09-12")


def test_source_and_combined_filters(news: Pipeline) -> None:
    passages = news.retrieve(BRIDGE_Q, K, source=list(BRIDGE[:2]))
    assert {p.source for p in passages} <= set(BRIDGE[:2]) and len(passages) == K
    both = news.retrieve(POOL_Q, K, outlet=["Radio Nordost", "Lausitzer Echo"], since="2024-01-01")
    assert {p.source for p in both} == {"radio-nordost-hallenbad.txt", "lausitzer-echo-hallenbad.txt"}
    assert news.retrieve(POOL_Q, K, outlet="Keine Zeitung") == []


@pytest.mark.parametrize(
    ("given", "needle"),
    [
        ({"since": "2024-13"}, "since"),
        ({"until": "letzte Woche"}, "until"),
        ({"since": "2024-02", "until": "2024-01"}, "after the until"),
    ],
)
def test_bad_filter_values_are_bad_input(news: Pipeline, given: dict, needle: str) -> None:
    with pytest.raises(BadInput, match=needle):
        news.retrieve(POOL_Q, K, **given)


def test_filters_and_keywords_not_both(news: Pipeline) -> None:
    with pytest.raises(BadInput, match="either"):
        news.retrieve(POOL_Q, K, filters=Filters(outlets=("A",)), outlet="B")


def test_month_and_year_bounds() -> None:
    f = make_filters(since="2023", until="2024-02")
    assert (f.since, f.until) == (date(2023, 1, 1), date(2024, 2, 29))
    assert Filters(since=date(2024, 1, 1)).admits("a", ArticleMeta(updated="2024-01-01T00:10")) is True
    assert Filters(since=date(2024, 1, 1)).admits("a", ArticleMeta()) is False


# ----- ask: the answer draws only on what passes
def test_ask_with_filters(news: Pipeline) -> None:
    answer = news.ask(POOL_Q, outlet="Lausitzer Echo")
    assert answer.passages and {p.meta.outlet for p in answer.passages} == {"Lausitzer Echo"}
    body = answer.to_json()
    assert all(p["meta"]["outlet"] == "Lausitzer Echo" for p in body["passages"])
    assert all(c["meta"]["outlet"] == "Lausitzer Echo" for c in body["citations"])
    nothing = news.ask(POOL_Q, outlet="Keine Zeitung")
    assert nothing.abstained and nothing.passages == ()


# ----- the keyword index on its own: masking before the top k
def test_keyword_search_masks_before_taking_k(tmp_path: Path) -> None:
    index = KeywordIndex(tmp_path / "kw.sqlite")
    docs = [(f"a{i}", "a.txt", "Hallenbad Cottbus Hallenbad Kosten") for i in range(10)]
    docs += [(f"b{i}", "b.txt", f"Hallenbad und anderes {i}") for i in range(4)]
    index.add(docs)
    assert {h.id[0] for h in index.search("Hallenbad Kosten", 4)} == {"a"}
    hits = index.search("Hallenbad Kosten", 4, sources={"b.txt"})
    assert [h.id for h in hits] and {h.id[0] for h in hits} == {"b"} and len(hits) == 4
    assert index.search("Hallenbad", 4, sources=set()) == []
    index.close()


# ----- the CLI
@pytest.fixture
def cli_store(cli, tmp_path: Path) -> list[str]:
    toml = tmp_path / "rag.toml"
    lines = [f'store = "{tmp_path / "store"}"', f'cache_dir = "{tmp_path / "cache"}"']
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in STORE_OPTIONS.items()]
    toml.write_text("\n".join(lines) + "\n")
    args = ["--settings", str(toml)]
    assert cli(*args, "index", NEWS_DIR).code == 0
    return args


def test_cli_filters(cli, cli_store: list[str]) -> None:
    result = cli(*cli_store, "retrieve", BRIDGE_Q, "-k", K, "--outlet", "Radio Nordost", "--json")
    assert result.code == 0, result.err
    body = result.json()
    assert len(body["passages"]) == K and {p["meta"]["outlet"] for p in body["passages"]} == {"Radio Nordost"}
    assert body["filters"] == {"outlet": ["Radio Nordost"], "source": [], "since": None, "until": None}

    human = cli(*cli_store, "retrieve", POOL_Q, "-k", 2, "--source", POOL[1])
    assert human.code == 0 and human.out.startswith(f"1. {POOL[1]}  (Lausitzer Echo, 2024-01-17)  score ")

    asked = cli(*cli_store, "ask", POOL_Q, "--since", "2024-01-17", "--until", "2024-01-17", "--json")
    assert asked.code == 0, asked.err
    answer = asked.json()
    assert answer["passages"] and all(p["meta"]["published"].startswith("2024-01-17") for p in answer["passages"])

    lines = cli(
        *cli_store,
        "retrieve",
        "-",
        "--outlet",
        "Elbtal Nachrichten",
        "-k",
        2,
        stdin=f"{BRIDGE_Q}\nPegel der Elbe in Dresden\n",
    ).json_lines()
    assert [len(r["passages"]) for r in lines] == [2, 2]
    assert {p["meta"]["outlet"] for r in lines for p in r["passages"]} == {"Elbtal Nachrichten"}

    bad = cli(*cli_store, "retrieve", POOL_Q, "--since", "gestern")
    assert bad.code == BadInput.exit_code and "since" in bad.err and bad.out == ""


def test_cli_sources_json_has_meta(cli, cli_store: list[str]) -> None:
    rows = {r["source"]: r for r in cli(*cli_store, "sources", "--json").json()}
    assert rows["baltic-morning-post-port.html"]["meta"]["outlet"] == "Baltic Morning Post"
    assert rows["leserbrief-radweg.txt"]["meta"] == {k: "" for k in ("outlet", "url", "author", "published", "updated")}


# ----- the HTTP API
def test_http_filters(news: Pipeline) -> None:
    with LiveServer(create_app(news, ui=False)) as url, httpx.Client(base_url=url, timeout=60) as client:
        r = client.post("/v1/retrieve", json={"question": BRIDGE_Q, "k": K, "outlet": "radio nordost"})
        assert r.status_code == 200, r.text
        passages = r.json()["passages"]
        assert len(passages) == K and {p["meta"]["outlet"] for p in passages} == {"Radio Nordost"}

        r = client.post(
            "/v1/retrieve",
            json={"question": POOL_Q, "k": K, "since": "2024-01", "until": "2024-01-31", "source": list(POOL)},
        )
        assert {p["source"] for p in r.json()["passages"]} <= set(POOL)

        r = client.post("/v1/ask", json={"question": POOL_Q, "outlet": ["Spreewald Zeitung"]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["passages"] and {p["meta"]["outlet"] for p in body["passages"]} == {"Spreewald Zeitung"}
        assert all(c["meta"]["outlet"] == "Spreewald Zeitung" for c in body["citations"])

        articles = {a["source"]: a for a in client.get("/v1/articles").json()["articles"]}
        assert articles["radio-nordost-sturm.txt"]["meta"]["updated"] == "2023-10-03T14:20"
        one = client.get("/v1/articles/spreewald-zeitung-hallenbad.md").json()
        assert one["meta"]["author"] == "Miriam Schulze"

        r = client.post("/v1/retrieve", json={"question": POOL_Q, "since": "bald"})
        assert r.status_code == 400 and "since" in r.json()["detail"]


# ----- llama-index
def test_llama_metadata_filters(news: Pipeline) -> None:
    by_outlet = MetadataFilters(filters=[MetadataFilter(key="outlet", value="Radio Nordost")])
    nodes = NewsRetriever(news, k=K, filters=by_outlet).retrieve(BRIDGE_Q)
    assert len(nodes) == K and {n.node.metadata["outlet"] for n in nodes} == {"Radio Nordost"}
    assert all(n.node.metadata["published"] or n.node.metadata["updated"] for n in nodes)
    assert "Radio Nordost" in nodes[0].node.get_content(metadata_mode="llm")

    january = MetadataFilters(
        filters=[
            MetadataFilter(key="published", value="2024-01-01", operator=FilterOperator.GTE),
            MetadataFilter(key="published", value="2024-02-01", operator=FilterOperator.LT),
            MetadataFilter(key="source", value=list(POOL), operator=FilterOperator.IN),
        ]
    )
    assert filters_from_llama(january) == Filters(sources=POOL, since=date(2024, 1, 1), until=date(2024, 1, 31))
    nodes = NewsRetriever(news, k=K, filters=january).retrieve(POOL_Q)
    assert nodes and {n.node.metadata["source"] for n in nodes} <= set(POOL)


@pytest.mark.parametrize(
    "bad",
    [
        MetadataFilters(filters=[MetadataFilter(key="author", value="Karl Neumann")]),
        MetadataFilters(filters=[MetadataFilter(key="outlet", value="A", operator=FilterOperator.NE)]),
        MetadataFilters(filters=[MetadataFilter(key="published", value="letzte Woche", operator=FilterOperator.GTE)]),
        MetadataFilters(
            filters=[MetadataFilter(key="outlet", value="A"), MetadataFilter(key="outlet", value="B")], condition="or"
        ),
    ],
)
def test_llama_unsupported_filters_are_refused(news: Pipeline, bad: MetadataFilters) -> None:
    with pytest.raises(BadInput):
        NewsRetriever(news, filters=bad)


# ----- the examples in docs/metadata.md run as written
def test_metadata_doc_examples_run(tmp_path: Path) -> None:
    import re
    import subprocess

    from conftest import PYTHON, ROOT, clean_env

    doc = (ROOT / "docs" / "metadata.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    assert len(blocks) == 2
    env = clean_env(RAG_EMBEDDER="fake", RAG_GENERATOR="extractive", RAG_CACHE_DIR=str(tmp_path / "cache"))
    setup = f"from rag import open_store\nwith open_store('rag-store') as rag:\n    rag.index([{str(NEWS_DIR)!r}])\n"
    outputs = []
    for code in [setup, *blocks]:
        proc = subprocess.run([PYTHON, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout)
    python_api, llama = outputs[1], outputs[2]
    assert "elbtal-nachrichten-elbpegel-update.html Elbtal Nachrichten 2024-01-05T08:00+01:00" in python_api
    assert "havelland-kurier-havelbruecke.html Havelland Kurier 2023-09-12T09:30+02:00" in python_api
    lines = llama.strip().splitlines()
    assert lines and all(" Elbtal Nachrichten 2024-01-05" in line for line in lines)
