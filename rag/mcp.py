"""The product as an MCP server (``rag mcp``): four tools an assistant can call, over stdio
or streamable HTTP, built with the official ``mcp`` SDK.

    search_articles(query, k, filters)   passages with source, start/end offsets, score, text, meta
    ask(question, history, filters)      a grounded answer with verbatim citations
    list_articles()                      the indexed articles, with outlet and dates
    get_article(source, start, end)      an article's cleaned text, or a span of it

    from rag import open_store
    from rag.mcp import build_server
    server = build_server(open_store("rag-store"))     # an mcp.server.mcpserver.MCPServer
    server.run()                                       # stdio; see serve() for HTTP

Offsets are character offsets into the article's cleaned text, as everywhere in the product:
``get_article(source, start, end).text == passage text`` for every passage and citation.
``filters`` (outlet, source, since, until; the HTTP API's fields) go into the search itself,
Chroma's ``where`` and the keyword index, so a selective filter still returns ``k`` passages.

Errors: a :class:`~rag.errors.RagError` (empty question, unknown article, nothing indexed,
the store unreachable) becomes a tool error (``is_error``) whose text is the same one line the
HTTP API sends, after the SDK's ``Error executing tool NAME:`` prefix. Arguments are checked
against each tool's published input schema (types, required, ``k`` in 1..50) before the SDK's
own pydantic validation, whose report spans several lines, so a bad call is one line too
(``Invalid arguments: k: 80 is greater than the maximum of 50.``); offsets past the article's
end are checked in the tool, against its length. Filter values are read by
:func:`rag.filters.filters_from_mapping`, so a bad date has the HTTP API's words; a ``source``
that is not indexed is refused (the HTTP API returns no passages), an unknown outlet matches nothing.
Anything else is a bug: the client sees only ``Error executing tool NAME``, the server
logs the traceback on stderr.

Left out: no auth on the HTTP transport, which is why it binds 127.0.0.1 only;
no streaming of the answer draft (the tool returns the checked answer).
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from rag.api import MAX_QUESTION_CHARS, Pipeline
from rag.errors import BadInput, RagError
from rag.filters import filters_from_mapping
from rag.types import Answer, ArticleMeta, Filters, Passage

NAME = "rag-news"
HOST = "127.0.0.1"  # no auth on this transport: never bind beyond this machine
DEFAULT_PORT = 7861  # `rag serve` and `rag chat` default to 7860
PATH = "/mcp"
MAX_K = 50  # as the HTTP API's /v1/retrieve
MAX_HISTORY = 10  # earlier turns kept, as in the HTTP API

INSTRUCTIONS = (
    "Tools over a collection of news articles (mostly German). Use search_articles to find passages "
    "and ask for a short grounded answer with verbatim citations; when ask abstains, the articles do not "
    "say. Both take filters (outlet, source, since, until) to keep to some outlets, articles or dates. Every "
    "passage and citation has start/end character offsets into its article's cleaned text: "
    "get_article(source, start, end) returns exactly that span, or with wider offsets its context. "
    "list_articles gives the article names and outlets that source arguments and filters take."
)


# ----- what the tools return (their output schemas)
class MetaInfo(BaseModel):
    outlet: str = Field(description='The publishing outlet; "" when the article does not say (nothing is guessed).')
    url: str
    author: str
    published: str = Field(
        description='ISO 8601 publication date (or date and time) as the article states it; "" when unknown.'
    )
    updated: str = Field(description="ISO 8601 last update, only when later than published.")


class PassageHit(BaseModel):
    source: str = Field(description="The article's name (as list_articles gives it).")
    title: str = Field(description="The article's title.")
    start: int = Field(description="Character offset where the passage starts in the article's cleaned text.")
    end: int = Field(description="Character offset where it ends (exclusive): text == article[start:end].")
    score: float = Field(
        description="Retrieval score (fused dense + keyword rank); higher is better, comparable only within one search."
    )
    text: str = Field(description="The passage, verbatim.")
    id: str = Field(description="The passage's id (a content hash).")
    meta: MetaInfo = Field(description="Who published the passage's article, and when.")


class SearchResult(BaseModel):
    query: str
    passages: list[PassageHit] = Field(description="Best first.")


class CitationOut(BaseModel):
    n: int = Field(description="The marker [n] in the answer text.")
    quote: str = Field(description="The cited words, verbatim: the article's text[start:end].")
    source: str = Field(description="The article's name.")
    start: int = Field(description="Character offset of the quote in the article's cleaned text.")
    end: int = Field(description="End offset of the quote (exclusive).")
    meta: MetaInfo = Field(description="Who published the quoted article, and when.")


class AskResult(BaseModel):
    question: str
    answer: str = Field(description="The checked answer with [n] citation markers, in the question's language.")
    abstained: bool = Field(description="True when the articles hold no answer (the answer text says so).")
    confidence: float | None = Field(description="Calibrated probability that the articles answer the question.")
    citations: list[CitationOut]
    language: str = Field(description="'de' or 'en'.")
    standalone_question: str = Field(description="The question after rewriting a follow-up using the history.")


class ArticleInfo(BaseModel):
    source: str = Field(description="The article's name: what source arguments and filters take.")
    title: str
    chars: int = Field(description="Length of the cleaned text (the largest valid end offset).")
    chunks: int = Field(description="Passages the article is split into.")
    meta: MetaInfo = Field(description="Outlet, URL, author and dates, as the article states them.")


class ArticleList(BaseModel):
    articles: list[ArticleInfo]


class ArticleSpan(BaseModel):
    source: str
    title: str
    start: int
    end: int
    chars: int = Field(description="Length of the whole cleaned text.")
    text: str = Field(description="The article's cleaned text[start:end].")


# ----- the tools' input descriptions
Query = Annotated[str, Field(description="What to look for: a question or keywords, German or English.")]
K = Annotated[
    int,
    Field(
        description=f"How many passages to return, 1 to {MAX_K}.", json_schema_extra={"minimum": 1, "maximum": MAX_K}
    ),
]
_NAMES = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
_DAY = "2023-09-12, 2023-09 (the whole month) or 2023 (the whole year)"
FilterArg = Annotated[
    dict[str, Any] | None,
    Field(
        description='Optional, applied inside the search (k stays full): {"outlet": NAME or [NAME, ...], '
        '"source": NAME or [NAME, ...], "since": DAY, "until": DAY}, any of them; all given must match. '
        "Outlets and article names as list_articles gives them. An undated article never passes a date filter. "
        "Other keys are refused.",
        json_schema_extra={
            "properties": {
                "outlet": {
                    **_NAMES,
                    "description": "Only articles from this outlet or these outlets (case does not matter).",
                },
                "source": {**_NAMES, "description": "Only these articles (names from list_articles)."},
                "since": {"type": "string", "description": f"Published on or after this day: {_DAY}."},
                "until": {"type": "string", "description": f"Published on or before this day: {_DAY}."},
            }
        },
    ),
]
Question = Annotated[str, Field(description="The question, German or English.")]
History = Annotated[
    list[str],
    Field(
        description="The conversation's earlier user questions, oldest first, "
        "so a follow-up like 'and when?' can be understood. Empty for a new question."
    ),
]
Source = Annotated[str, Field(description="The article's name, as list_articles, passages and citations give it.")]
Offset = Annotated[
    int | None,
    Field(
        description="Character offset into the cleaned text (see chars); omit start and end for the whole article.",
        json_schema_extra={"minimum": 0},
    ),
]

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def build_server(pipeline: Pipeline) -> MCPServer:
    """An MCP server whose four tools call ``pipeline``; run it with :func:`serve` (or ``.run()``)."""
    server = MCPServer(
        NAME, title="News articles Q&A", instructions=INSTRUCTIONS, version=_version(), log_level="WARNING"
    )
    server.middleware.append(_ArgumentCheck(server))
    top_k = pipeline.settings.top_k

    @server.tool(title="Search the articles", annotations=READ_ONLY)
    def search_articles(query: Query, k: K = top_k, filters: FilterArg = None) -> SearchResult:
        """Find the passages of the news articles that best match a query (hybrid dense + keyword search).

        Returns passages best first, each with its article (source), character offsets (start, end) into
        that article's cleaned text, a score, the verbatim text and the article's outlet and dates (meta).
        filters keeps to some outlets, articles or a date range. Use it to gather evidence; use ask for
        a checked answer."""
        with _tool_errors():
            check_k(k)
            chosen = check_filters(pipeline, filters)
            return SearchResult(query=query, passages=[_hit(p) for p in pipeline.retrieve(query, k, filters=chosen)])

    @server.tool(title="Ask the articles", annotations=READ_ONLY)
    def ask(
        question: Question,
        history: History = [],  # noqa: B006 - the SDK copies defaults
        filters: FilterArg = None,
    ) -> AskResult:
        """Answer a question from the news articles only, with verbatim citations.

        Each citation gives the quote, where it stands (source, start, end) and its article's outlet and
        dates. filters (as in search_articles) restricts the articles the answer may draw on. When the
        articles do not answer the question, abstained is true and the answer says so: do not fill in
        from elsewhere."""
        with _tool_errors():
            chosen = check_filters(pipeline, filters)
            turns = [t.strip()[:MAX_QUESTION_CHARS] for t in history if t.strip()][-MAX_HISTORY:]
            return _ask_result(pipeline.ask(question, turns, filters=chosen))

    @server.tool(title="List the articles", annotations=READ_ONLY)
    def list_articles() -> ArticleList:
        """List the indexed articles: name (source), title, length in characters, number of passages, and
        outlet, URL, author and dates (meta; "" where the article does not say)."""
        with _tool_errors():
            return ArticleList(
                articles=[
                    ArticleInfo(source=a.source, title=a.title, chars=a.chars, chunks=a.chunks, meta=_meta(a.meta))
                    for a in pipeline.sources()
                ]
            )

    @server.tool(title="Read an article", annotations=READ_ONLY)
    def get_article(source: Source, start: Offset = None, end: Offset = None) -> ArticleSpan:
        """Read an article's cleaned text, whole or the span [start, end) that a passage or citation names.

        Widen the offsets (e.g. start - 300, end + 300, kept within 0..chars) to read the context around
        a quote. Omitting start reads from the beginning, omitting end to the end."""
        with _tool_errors():
            article = pipeline.article(source)
            first, last = check_span(start, end, len(article.text))
            return ArticleSpan(
                source=article.source,
                title=article.title,
                start=first,
                end=last,
                chars=len(article.text),
                text=article.text[first:last],
            )

    return server


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rag-news")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0"


def check_k(k: int) -> None:
    if not 1 <= k <= MAX_K:
        raise BadInput(f"k must be from 1 to {MAX_K} (the number of passages to return); got {k}.")


def check_span(start: int | None, end: int | None, length: int) -> tuple[int, int]:
    """The span [start, end) within a text of ``length`` characters; None means that end of the text."""
    first = 0 if start is None else start
    last = length if end is None else end
    if not 0 <= first <= last <= length:
        raise BadInput(
            f"Offsets start={first}, end={last} are outside the article: use 0 <= start <= end <= "
            f"{length} (its length in characters)."
        )
    return first, last


def check_filters(pipeline: Pipeline, given: dict[str, Any] | None) -> Filters | None:
    """The tool's ``filters`` argument as :class:`Filters` (None for none); a source name that is
    not indexed is refused, since an assistant that mistyped one would otherwise read silence."""
    chosen = filters_from_mapping(given)
    if chosen.sources:
        known = {a.source for a in pipeline.sources()}
        for name in chosen.sources:
            if name not in known:
                pipeline.article(name)  # raises NotFound with the message every edge gives
    return chosen or None


class _ArgumentCheck:
    """Checks a tool call's arguments against the tool's published input schema before the SDK does,
    so a wrong type or a missing argument is one line (``Invalid arguments: k: 'five' is not of type
    'integer'``), as in the HTTP API, rather than pydantic's multi-line report."""

    def __init__(self, server: MCPServer) -> None:
        self._server = server
        self._validators: dict[str, Any] | None = None

    async def __call__(self, ctx: Any, call_next: Any) -> Any:
        params = ctx.params or {}
        if ctx.method == "tools/call" and isinstance(params.get("name"), str):
            name, arguments = params["name"], params.get("arguments") or {}
            validator = (await self._schemas()).get(name)
            if validator is not None and isinstance(arguments, dict):
                problems = sorted(validator.iter_errors(arguments), key=lambda e: list(map(str, e.absolute_path)))
                if problems:
                    text = "; ".join(
                        f"{'.'.join(map(str, e.absolute_path)) or 'arguments'}: {e.message}" for e in problems
                    )
                    return CallToolResult(
                        content=[
                            TextContent(
                                type="text", text=one_line(f"Error executing tool {name}: Invalid arguments: {text}.")
                            )
                        ],
                        is_error=True,
                    )
        return await call_next(ctx)

    async def _schemas(self) -> dict[str, Any]:
        if self._validators is None:
            from jsonschema import Draft202012Validator

            self._validators = {t.name: Draft202012Validator(t.input_schema) for t in await self._server.list_tools()}
        return self._validators


@contextmanager
def _tool_errors() -> Iterator[None]:
    """Our expected errors as tool errors, in the one line the HTTP API sends."""
    try:
        yield
    except RagError as exc:
        raise ToolError(one_line(exc)) from exc


def one_line(exc: BaseException | str) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _hit(p: Passage) -> PassageHit:
    return PassageHit(
        source=p.source,
        title=p.title,
        start=p.start,
        end=p.end,
        score=round(float(p.score), 6),
        text=p.text,
        id=p.id,
        meta=_meta(p.meta),
    )


def _meta(meta: ArticleMeta) -> MetaInfo:
    return MetaInfo(**meta.to_json())


def _ask_result(answer: Answer) -> AskResult:
    return AskResult(
        question=answer.question,
        answer=answer.answer,
        abstained=answer.abstained,
        confidence=None if answer.confidence is None else round(float(answer.confidence), 4),
        citations=[
            CitationOut(n=c.n, quote=c.quote, source=c.source, start=c.start, end=c.end, meta=_meta(answer.meta_of(c)))
            for c in answer.citations
        ],
        language=answer.language,
        standalone_question=answer.standalone_question,
    )


# ----- rag mcp
def serve(pipeline: Pipeline, *, http: bool = False, port: int | None = None) -> int:
    """Serve until the client disconnects (stdio) or Ctrl-C (HTTP). Nothing but the protocol goes
    to stdout on stdio (the SDK moves file descriptor 1 aside while it serves)."""
    port = DEFAULT_PORT if port is None else port
    if http:
        if not 1 <= port <= 65535:
            raise BadInput(f"Port {port} is out of range: use 1 to 65535.")
        _check_free(HOST, port)
    server = build_server(pipeline)
    pipeline.warm()  # the one start-up every edge runs: models load now, not on the first call
    if http:
        print(f"MCP server (streamable HTTP) on http://{HOST}:{port}{PATH}. Ctrl-C stops.", flush=True)
    with _sigterm_stops():
        try:
            if http:
                server.run("streamable-http", host=HOST, port=port, streamable_http_path=PATH)
            else:
                server.run("stdio")
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: a normal way to stop a server
            pass
    return 0


@contextmanager
def _sigterm_stops() -> Iterator[None]:
    """SIGTERM stops the server as Ctrl-C does. uvicorn shuts down gracefully on it and then
    raises it again; without a handler that kills the process before the CLI closes the pipeline."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise BadInput(
                f"Cannot listen on {host}:{port} ({exc.strerror}): is another server running? "
                "Pick another port with --port."
            ) from None


__all__ = ["build_server", "serve"]
