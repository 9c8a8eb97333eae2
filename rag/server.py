"""One HTTP server for the product (``rag serve``): a JSON API, an OpenAI-compatible
chat-completions endpoint, and the Gradio chat mounted at ``/``.

    POST   /v1/retrieve              passages for a question
    POST   /v1/ask                   a grounded answer (the ``rag ask --json`` object);
                                     ``"stream": true`` gives server-sent events
    GET    /v1/articles              the indexed articles
    POST   /v1/articles              upload one article (multipart field ``file``)
    GET    /v1/articles/{source}     one article's cleaned text (citation offsets point into it)
    DELETE /v1/articles/{source}     remove an article (``source`` may contain slashes)
    POST   /v1/chat/completions      OpenAI-compatible; ``GET /v1/models`` lists the one model
    GET    /healthz                  liveness and the article count
    GET    /openapi.json, /docs      the schema, generated from the pydantic models below

Pipeline calls block (Chroma, the embedder, the LLM), so endpoints are plain ``def``
functions, which FastAPI runs in its threadpool; the local LLM serializes generations
with its own lock. :class:`~rag.errors.RagError` becomes its ``http_status`` with a
one-line message.

Streaming. ``/v1/ask`` sends ``delta`` events with the draft as it is generated, then
one ``answer`` event with the checked answer, which can differ from the draft (the
grounding check drops or re-cites sentences): clients replace the draft with it. An
OpenAI client cannot retract text it was sent, so ``/v1/chat/completions`` streams only
the checked answer; while the draft is being generated it sends SSE comments (ignored
by clients, they keep proxies from timing out).

Left out: rate limits and CORS. With ``auth_user`` and ``auth_password`` set, the chat
asks for a login and ``/v1/*`` wants HTTP Basic or ``Authorization: Bearer <password>``
(the OpenAI client's ``api_key``); without them the API is open, so keep the default
bind address 127.0.0.1 unless the network is trusted.
"""

import base64
import hmac
import json
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from types import ModuleType
from typing import Any, Literal

from rag.runtime import set_offline_env

set_offline_env()  # before gradio (imported with the chat) can phone home

import anyio
from fastapi import APIRouter, Depends, FastAPI, File, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from rag.api import MAX_QUESTION_CHARS, Pipeline
from rag.errors import BadInput, RagError
from rag.settings import APP_NAME
from rag.types import Answer, Filters

log = logging.getLogger(__name__)

MODEL_ID = APP_NAME  # the one model /v1/models lists; any requested model name is accepted
SOURCES_HEADING = "Sources:"
QUOTE_CHARS = 160  # quotes in the appended source list are cut to this
KEEPALIVE_SECONDS = 2.0
MAX_HISTORY = 10  # earlier turns kept (the rewrite reads the last few); each cut like a question
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
OPENAI_PATHS = ("/v1/chat/completions", "/v1/models")
Generators = Literal["local", "openai", "extractive"]


# ----- bodies (documented in /openapi.json)
class MetaOut(BaseModel):
    outlet: str = Field(default="", description='Publishing outlet; "" when the article does not say.')
    url: str = ""
    author: str = ""
    published: str = Field(
        default="",
        description='ISO 8601 publication date (or date and time) as the article states it; "" when unknown.',
    )
    updated: str = Field(default="", description="ISO 8601 last update, only when later than published.")


class PassageOut(BaseModel):
    id: str
    source: str = Field(description="The article's name, as GET /v1/articles lists it.")
    title: str
    text: str
    start: int = Field(description="Character offset into the article's cleaned text.")
    end: int
    score: float = Field(description="Fused retrieval score; higher is better.")
    meta: MetaOut = Field(default_factory=MetaOut, description="Who published the passage's article, and when.")
    group: str = Field(
        default="", description='Near-duplicate group: copies of one passage share it ("" if never grouped).'
    )
    story: str = Field(default="", description="The story of the passage's article (articles sharing a copy or a URL).")
    also_in: list["PassageOut"] = Field(
        default_factory=list,
        description="The other copies of this passage that pass "
        "the filters (other outlets, older versions), newest first; each citable.",
    )


class CitationOut(BaseModel):
    n: int = Field(description="The marker [n] in the answer; passages[n-1] is the passage.")
    passage_id: str
    source: str
    start: int
    end: int
    quote: str = Field(description="Verbatim: the article's text[start:end].")
    meta: MetaOut | None = Field(default=None, description="The quoted article's metadata (in /v1/ask).")


class AnswerOut(BaseModel):
    question: str
    answer: str = Field(description="The checked answer, with [n] citation markers.")
    abstained: bool = Field(description="True when the articles hold no answer (the answer says so).")
    citations: list[CitationOut]
    passages: list[PassageOut]
    timings: dict[str, float]
    standalone_question: str = Field(description="The question after rewriting a follow-up.")
    language: str
    generator: str
    confidence: float | None = Field(
        default=None,
        description="Calibrated probability that the articles answer "
        "the question; it decides answer vs abstention (see docs).",
    )
    signals: dict[str, float | None] = Field(default_factory=dict, description="The signals that decision saw.")
    period: dict[str, Any] | None = Field(
        default=None,
        description="The publication period read from the question "
        "(words, since, until, applied); applied false: nothing was published "
        "then and all articles were searched.",
    )
    disagreement: dict[str, Any] | None = Field(
        default=None,
        description="Sources that state the answer's fact with another number: ours, theirs, n "
        "(the two first citations) and sides ([{value, n}]); null when none does.",
    )


class FilterFields(BaseModel):
    """Filters applied inside the search (k stays full); every field is optional."""

    outlet: str | list[str] | None = Field(default=None, description="Only these outlets (case does not matter).")
    source: str | list[str] | None = Field(
        default=None, description="Only these articles, as GET /v1/articles names them."
    )
    since: str | None = Field(default=None, description="Published on or after: 2023-09-12, 2023-09 or 2023.")
    until: str | None = Field(default=None, description="Published on or before: 2023-09-12, 2023-09 or 2023.")

    def filters(self) -> Filters | None:
        from rag.filters import make_filters

        return make_filters(self.outlet, self.source, self.since, self.until) or None


class RetrieveRequest(FilterFields):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(
        description="The question (German or English).", examples=["Wann treffen sich Kim und Putin?"]
    )
    k: int | None = Field(default=None, ge=1, le=50, description="Number of passages (default: the top_k setting).")


class RetrieveResponse(BaseModel):
    question: str
    passages: list[PassageOut]
    timings: dict[str, float]


class AskRequest(FilterFields):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(
        description="The question (German or English).", examples=["Wann treffen sich Kim und Putin?"]
    )
    history: list[str] = Field(
        default_factory=list, description="Earlier user turns of the conversation, oldest first."
    )
    generator: Generators | None = Field(default=None, description="Answer generator (default: the server's setting).")
    stream: bool = Field(default=False, description="Server-sent events: `delta` events, then one `answer` event.")


class ArticleOut(BaseModel):
    source: str
    title: str
    chunks: int
    chars: int
    meta: MetaOut = Field(default_factory=MetaOut)


class ArticleList(BaseModel):
    articles: list[ArticleOut]


class ArticleText(BaseModel):
    source: str
    title: str
    text: str = Field(description="The cleaned text every offset points into.")
    meta: MetaOut = Field(default_factory=MetaOut)


class Failure(BaseModel):
    source: str
    reason: str


class IndexReportOut(BaseModel):
    added: list[str]
    updated: list[str]
    unchanged: list[str]
    removed: list[str]
    failed: list[Failure]
    metadata_only: list[str] = Field(
        default_factory=list, description="Updated with new metadata, nothing re-embedded."
    )
    warnings: list[Failure] = Field(default_factory=list, description="Metadata ignored; the article was indexed.")
    chunks: int
    seconds: float
    stages: dict[str, float]


class Removed(BaseModel):
    removed: str


class Health(BaseModel):
    status: Literal["ok", "warming"]
    ready: bool
    articles: int
    embedder: str
    generator: str


class ErrorOut(BaseModel):
    detail: str


# OpenAI-compatible bodies: lenient on input (clients send many optional fields), standard on output.
class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str = Field(description="system, user, assistant, ...; only user turns are used.")
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(default=MODEL_ID, description=f"Ignored: there is one model, {MODEL_ID!r}.")
    messages: list[ChatMessage] = Field(
        min_length=1,
        description="The last user message is the question; earlier "
        "user messages are the history. System and assistant messages are ignored.",
    )
    stream: bool = False


class ChatCompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str = Field(description="The answer, then a 'Sources:' list of [n] source and quote.")


class ChatChoice(BaseModel):
    index: int = 0
    message: ChatCompletionMessage
    finish_reason: Literal["stop"] = "stop"


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    citations: list[CitationOut] = Field(description="Extension: the structured citations of the answer.")
    abstained: bool = Field(description="Extension: true when the articles hold no answer.")


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


# ----- the app
UiBuilder = Callable[[Any], Any]  # pipeline -> gr.Blocks


def create_app(pipeline: Pipeline, *, ui: bool | UiBuilder = True) -> FastAPI:
    """The FastAPI app; ``ui=True`` mounts ``ui.build_app(pipeline)`` at ``/`` when that exists,
    a callable mounts what it builds, ``False`` serves the API only."""
    app = FastAPI(
        title="News Q&A API",
        version="1",
        description="Questions about German news articles, answered with cited, verbatim passages. "
        "Also speaks the OpenAI chat-completions protocol at /v1/chat/completions.",
    )
    app.state.pipeline = pipeline
    pipeline.warm()  # the one start-up: /healthz says ready once it has run (idempotent)
    _add_error_handlers(app)
    api = APIRouter(
        prefix="/v1",
        dependencies=[Depends(_auth_check(pipeline.settings))],
        responses={400: {"model": ErrorOut}, 401: {"model": ErrorOut}},
    )
    _add_routes(api, pipeline)
    _add_openai_routes(api, pipeline)
    app.include_router(api)

    @app.get("/healthz", response_model=Health, tags=["service"], responses={503: {"model": Health}})
    def healthz(response: Response) -> Health:
        """200 once the warm-up has run (the first answers will be fast); 503 "warming" before."""
        settings = pipeline.settings
        ready = pipeline.ready
        if not ready:
            response.status_code = 503
        return Health(
            status="ok" if ready else "warming",
            ready=ready,
            articles=len(pipeline.sources()),
            embedder=settings.embedder,
            generator=settings.generator,
        )

    builder = _ui_builder(ui)
    app.state.chat_ui = builder is not None
    if builder is not None:
        _mount_chat(app, builder(pipeline), pipeline.settings)
    else:

        @app.get("/", include_in_schema=False)
        def root() -> dict[str, str]:
            return {"name": app.title, "docs": "/docs", "openapi": "/openapi.json"}

    return app


def _add_routes(api: APIRouter, pipeline: Pipeline) -> None:
    @api.post("/retrieve", response_model=RetrieveResponse, tags=["questions"], responses={409: {"model": ErrorOut}})
    def retrieve(body: RetrieveRequest) -> dict[str, Any]:
        filters = body.filters()
        passages, seconds = (
            pipeline.retrieve_timed(body.question, body.k, filters)
            if filters
            else pipeline.retrieve_timed(body.question, body.k)
        )
        return {
            "question": body.question,
            "passages": [p.to_json() for p in passages],
            "timings": {"retrieve_s": round(seconds, 4)},
        }

    @api.post(
        "/ask",
        response_model=AnswerOut,
        tags=["questions"],
        responses={
            200: {
                "description": "The answer; with `stream: true` a text/event-stream of `delta` events "
                '(`{"text": ...}`), then one `answer` event (the answer object) or an `error` event.',
                "content": {"text/event-stream": {}},
            },
            409: {"model": ErrorOut},
            503: {"model": ErrorOut},
        },
    )
    def ask(body: AskRequest) -> Any:
        history = _history(body.history)
        filters = body.filters()
        extra: dict[str, Any] = {"filters": filters} if filters else {}
        if not body.stream:
            return pipeline.ask(body.question, history, body.generator, **extra).to_json()
        stream = pipeline.ask_stream(body.question, history, body.generator, **extra)
        first = next(stream)  # retrieval runs now: an error before any output is a plain HTTP error
        return StreamingResponse(_ask_events(first, stream), media_type="text/event-stream", headers=SSE_HEADERS)

    @api.get("/articles", response_model=ArticleList, tags=["articles"])
    def list_articles() -> dict[str, Any]:
        return {
            "articles": [
                {"source": a.source, "title": a.title, "chunks": a.chunks, "chars": a.chars, "meta": _meta_json(a)}
                for a in pipeline.sources()
            ]
        }

    @api.post(
        "/articles",
        response_model=IndexReportOut,
        status_code=201,
        tags=["articles"],
        responses={200: {"model": IndexReportOut, "description": "Already indexed with this text."}},
    )
    def upload_article(file: UploadFile = File(description="A .txt, .md or .html article.")) -> Any:
        data = file.file.read(int(pipeline.settings.max_upload_mb * 1024 * 1024) + 1)  # index_upload refuses more
        report = pipeline.index_upload(file.filename or "", data)
        status = 201 if report.added or report.updated else 200
        return JSONResponse(report.to_json(), status_code=status)

    @api.get(
        "/articles/{source:path}", response_model=ArticleText, tags=["articles"], responses={404: {"model": ErrorOut}}
    )
    def get_article(source: str) -> dict[str, Any]:
        article = pipeline.article(source)
        return {"source": article.source, "title": article.title, "text": article.text, "meta": _meta_json(article)}

    @api.delete(
        "/articles/{source:path}", response_model=Removed, tags=["articles"], responses={404: {"model": ErrorOut}}
    )
    def delete_article(source: str) -> dict[str, str]:
        pipeline.remove(source)
        return {"removed": source}


def _meta_json(item: Any) -> dict[str, str]:
    meta = getattr(item, "meta", None)
    return meta.to_json() if meta is not None else {}


def _add_openai_routes(api: APIRouter, pipeline: Pipeline) -> None:
    @api.get("/models", response_model=ModelList, tags=["openai"])
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": APP_NAME}]}

    @api.post(
        "/chat/completions",
        response_model=ChatCompletion,
        tags=["openai"],
        responses={
            200: {
                "description": "A chat.completion object; with `stream: true` a text/event-stream of "
                "chat.completion.chunk objects ending with `data: [DONE]`.",
                "content": {"text/event-stream": {}},
            }
        },
    )
    def chat_completions(body: ChatCompletionRequest) -> Any:
        question, history = conversation(body.messages)
        reply_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if body.stream:
            stream = pipeline.ask_stream(question, history)
            first = next(stream)  # as in /v1/ask: errors before any output are plain HTTP errors
            return StreamingResponse(
                _chat_chunks(first, stream, reply_id, created), media_type="text/event-stream", headers=SSE_HEADERS
            )
        answer = pipeline.ask(question, history)
        return {
            "id": reply_id,
            "object": "chat.completion",
            "created": created,
            "model": MODEL_ID,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": with_sources(answer)}, "finish_reason": "stop"}
            ],
            "citations": answer.to_json()["citations"],
            "abstained": answer.abstained,
        }


def conversation(messages: list[ChatMessage]) -> tuple[str, list[str]]:
    """(question, history): the last user message, and the user messages before it."""
    users = [_text(m.content) for m in messages if m.role == "user"]
    if not users:
        raise BadInput('The messages hold no user message: send the question as {"role": "user", "content": ...}.')
    return users[-1], _history(users[:-1])


def _history(turns: list[str]) -> list[str]:
    """Non-blank earlier turns, the last few, each no longer than a question may be."""
    return [t.strip()[:MAX_QUESTION_CHARS] for t in turns if t.strip()][-MAX_HISTORY:]


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, list):  # content parts: keep the text ones
        return "\n".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return content or ""


def with_sources(answer: Answer) -> str:
    """The answer text, then a compact 'Sources:' list: [n] source: "quote"."""
    if not answer.citations:
        return answer.answer
    lines = [answer.answer.strip(), "", SOURCES_HEADING]
    for c in answer.citations:
        quote = " ".join(c.quote.split())
        if len(quote) > QUOTE_CHARS:
            quote = quote[:QUOTE_CHARS].rsplit(" ", 1)[0] + " …"
        meta = answer.meta_of(c)
        note = ", ".join(x for x in (meta.outlet, meta.date[:10]) if x)
        lines.append(f'[{c.n}] {c.source}{f" ({note})" if note else ""}: "{quote}"')
    return "\n".join(lines)


# ----- server-sent events
_END = object()


async def _drain(first: Any, rest: Iterator[Any]) -> AsyncIterator[Any]:
    """The items of a blocking iterator, each ``next`` in a worker thread; closes it on the way out
    (a client that disconnects must not leave the LLM lock held by a suspended generator)."""
    try:
        yield first
        while True:
            # Not abandoned on cancel: the thread finishes its step first, so close() below is safe.
            item = await anyio.to_thread.run_sync(next, rest, _END)
            if item is _END:
                return
            yield item
    finally:
        close = getattr(rest, "close", None)
        if close is not None:
            close()


def _sse(data: Any, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    body = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"{head}data: {body}\n\n"


async def _ask_events(first: Any, rest: Iterator[Any]) -> AsyncIterator[str]:
    try:
        async for item in _drain(first, rest):
            if isinstance(item, Answer):
                yield _sse(item.to_json(), "answer")
            elif item:
                yield _sse({"text": item}, "delta")
    except Exception as exc:  # noqa: BLE001 - the status line is sent; report in-band
        yield _sse(_error_body(exc)["error"], "error")


async def _chat_chunks(first: Any, rest: Iterator[Any], reply_id: str, created: int) -> AsyncIterator[str]:
    def chunk(delta: dict[str, str], finish: str | None = None, **extra: Any) -> str:
        return _sse(
            {
                "id": reply_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": MODEL_ID,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
        )

    yield chunk({"role": "assistant", "content": ""})
    answer, last_ping = None, time.monotonic()
    try:
        async for item in _drain(first, rest):
            if isinstance(item, Answer):
                answer = item
            elif time.monotonic() - last_ping > KEEPALIVE_SECONDS:
                last_ping = time.monotonic()
                yield ": drafting\n\n"
    except Exception as exc:  # noqa: BLE001 - the OpenAI client raises on an error event
        yield _sse(_error_body(exc))
        yield "data: [DONE]\n\n"
        return
    assert answer is not None
    for piece in _pieces(with_sources(answer)):
        yield chunk({"content": piece})
    yield chunk({}, "stop", citations=answer.to_json()["citations"], abstained=answer.abstained)
    yield "data: [DONE]\n\n"


def _pieces(text: str, words: int = 8) -> Iterator[str]:
    """A few words per chunk, whitespace kept, so the pieces join back to ``text`` exactly."""
    parts = text.split(" ")
    for i in range(0, len(parts), words):
        yield " ".join(parts[i : i + words]) + (" " if i + words < len(parts) else "")


# ----- errors and auth
def _error_body(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, RagError):
        message, kind = " ".join(str(exc).split()), type(exc).__name__
    else:
        log.exception("unexpected error while streaming", exc_info=exc)
        message, kind = "Internal error while answering; the server log has the details.", "InternalError"
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _add_error_handlers(app: FastAPI) -> None:
    def respond(request: Request, status: int, message: str, kind: str) -> JSONResponse:
        if request.url.path.startswith(OPENAI_PATHS):  # the shape OpenAI clients read their message from
            body: dict[str, Any] = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        else:
            body = {"detail": message}
        headers = {"WWW-Authenticate": 'Basic realm="rag"'} if status == 401 else None
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RagError)
    async def rag_error(request: Request, exc: RagError) -> JSONResponse:
        return respond(request, exc.http_status, " ".join(str(exc).split()) or type(exc).__name__, type(exc).__name__)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if not request.url.path.startswith(OPENAI_PATHS):  # FastAPI's own 422 with the list of problems
            return JSONResponse({"detail": _jsonable(exc.errors())}, status_code=422)
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors())
        return respond(request, 400, f"Invalid request: {problems}", "invalid_request_error")


def _jsonable(errors: Any) -> Any:
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(errors)


class Unauthorized(RagError):
    http_status = 401


def _auth_check(settings: Any) -> Callable[[Request], None]:
    user, password = settings.auth_user, settings.auth_password

    def check(request: Request) -> None:
        if not (user and password):
            return
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), password.encode()):
            return
        if scheme.lower() == "basic":
            try:
                given = base64.b64decode(value.strip()).decode()
            except ValueError:
                given = ""
            if hmac.compare_digest(given.encode(), f"{user}:{password}".encode()):
                return
        raise Unauthorized("This server needs a login: HTTP Basic auth, or `Authorization: Bearer <password>`.")

    return check


# ----- the chat
def _ui_builder(ui: bool | UiBuilder) -> UiBuilder | None:
    if callable(ui):
        return ui
    if not ui:
        return None
    ui_package: ModuleType | None
    try:
        import ui as ui_package
    except ModuleNotFoundError as exc:
        if exc.name != "ui":
            raise  # the chat exists but needs something missing: say so, do not hide it
        ui_package = None
    builder = getattr(ui_package, "build_app", None)
    if builder is None:
        log.warning("The web chat (ui.build_app) is not available: serving the API only.")
    return builder


def _mount_chat(app: FastAPI, blocks: Any, settings: Any) -> None:
    import gradio as gr

    auth = (settings.auth_user, settings.auth_password) if settings.auth_user and settings.auth_password else None
    blocks.queue(default_concurrency_limit=2)
    gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        auth=auth,
        ssr_mode=False,
        mcp_server=False,
        show_error=False,
        max_file_size=int(settings.max_upload_mb * 1024 * 1024),
        server_name=settings.host,
        server_port=settings.port,
    )


# ----- rag serve
def serve(pipeline: Pipeline, host: str | None = None, port: int | None = None, *, ui: bool | UiBuilder = True) -> int:
    """Index the sample articles into an empty store, warm the models, serve until Ctrl-C."""
    import uvicorn

    host = host or pipeline.settings.host
    port = port or pipeline.settings.port
    if not 1 <= port <= 65535:
        raise BadInput(f"Port {port} is out of range: use 1 to 65535.")
    _check_free(host, port)
    if not pipeline.sources():
        print("The store is empty: indexing the sample articles first.", flush=True)
        pipeline.index()
    try:  # load the models now rather than on the first request; a missing LLM still leaves retrieval
        _ = pipeline.retriever
        _ = pipeline.answerer
    except RagError as exc:
        print(f"warning: {' '.join(str(exc).split())}", flush=True)
    else:
        pipeline.warm()  # primes the LLM's prompt cache while the server starts
    app = create_app(pipeline, ui=ui)
    chat = "chat at /, " if app.state.chat_ui else ""
    print(f"Serving on http://{host}:{port}  ({chat}API at /v1, docs at /docs). Ctrl-C stops.", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    return 0


def _check_free(host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BadInput(
            f"Cannot bind {host!r}: {exc.strerror}. Use an address of this machine, e.g. 127.0.0.1."
        ) from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise BadInput(
                f"Cannot listen on {host}:{port} ({exc.strerror}): is another server running? "
                "Pick another port with --port."
            ) from None
