"""The web chat: a Gradio app built around a pipeline object it is given.

:func:`build_app` wires the page to the pipeline's public methods only (``ask_stream``,
``sources``, ``index_upload``, ``remove``, ``index``, ``settings``); it knows nothing about
retrieval, models or the store. :func:`launch` is the separate step that binds a host and
port (optionally with a login) after indexing the sample articles into an empty store. The
filters under Settings (outlets of the indexed articles, since/until days) ride along with each question.

Expected failures (:class:`~rag.errors.RagError`) become a message in the chat or the
Articles tab; anything else is logged with its traceback on the server and shown to the
user as one line. Uploads are read from Gradio's temporary file, which is deleted at once;
the pipeline checks the name, type and size.
"""

from __future__ import annotations

import html

import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no phoning home
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr

from rag.errors import RagError
from rag.filters import make_filters
from rag.types import Answer
from ui import render
from ui.articles import outlet_names

if TYPE_CHECKING:
    from rag.api import Pipeline
    from rag.settings import Settings

log = logging.getLogger(__name__)

TITLE = "News Q&A"
GENERATORS = [
    ("Local LLM (Qwen2.5 via llama.cpp)", "local"),
    ("Extractive (no LLM: best matching sentences)", "extractive"),
    ("OpenAI-compatible server", "openai"),
]
UPLOAD_TYPES = [".txt", ".md", ".html"]
DAY_HINT = "2023-09-12, 2023-09, 2023"  # what the since/until filters read (rag.filters.parse_bound)
MAX_TOP_K = 20

# Global page styles travel with the app (the sources panel's <head> snippet), so the
# Blocks built here look the same whoever launches them.
CSS = """
.rag-question { white-space: pre-wrap; }
.rag-answer { line-height: 1.55; }
a.cite { display: inline-block; margin: 0 1px; padding: 0 4px; border-radius: 4px; font-size: 0.8em;
  font-weight: 600; line-height: 1.35; vertical-align: 1px; text-decoration: none !important; cursor: pointer;
  background: rgba(59, 130, 246, 0.14); color: #1d4ed8 !important; border: 1px solid rgba(59, 130, 246, 0.35); }
a.cite:hover { background: #1d4ed8; color: #fff !important; }
.dark a.cite { color: #93c5fd !important; }
.cite-draft { font-size: 0.8em; opacity: 0.7; }
.rag-pending { font-style: italic; opacity: 0.7; }
.rag-cursor { animation: rag-blink 1s steps(2) infinite; opacity: 0.6; }
@keyframes rag-blink { 50% { opacity: 0; } }
.rag-abstained, .rag-error { padding: 8px 12px; border-radius: 6px; }
.rag-abstained { border-left: 4px solid #d97706; background: rgba(245, 158, 11, 0.13); }
.rag-error { border-left: 4px solid #dc2626; background: rgba(239, 68, 68, 0.12); }
.rag-abstained p, .rag-error p { margin: 4px 0 0 0; }
.rag-notice-title { font-weight: 700; }
.rag-abstained .rag-notice-title { color: #b45309; }
.rag-error .rag-notice-title { color: #b91c1c; }
.dark .rag-abstained .rag-notice-title { color: #fbbf24; }
.dark .rag-error .rag-notice-title { color: #f87171; }
.rag-hint { font-size: 0.85em; opacity: 0.8; }
.rag-sources { font-size: 0.92em; }
.rag-sources h3 { margin: 0 0 6px 0; font-size: 1.1em; }
.rag-sources .turn-question { font-weight: 600; margin-bottom: 2px; }
.rag-sources .turn-rewrite { opacity: 0.75; font-size: 0.9em; margin-bottom: 4px; }
.rag-sources .src-heading { margin: 10px 0 4px 0; font-size: 0.95em; opacity: 0.85; }
.rag-sources .src-count { font-weight: 400; }
.rag-sources details.src { border: 1px solid var(--border-color-primary); border-radius: 8px; margin: 6px 0;
  padding: 6px 10px; background: var(--background-fill-primary); scroll-margin-top: 8px; }
.rag-sources details.src.cited { border-color: rgba(59, 130, 246, 0.55); background: rgba(59, 130, 246, 0.05); }
.rag-sources details.src.flash { animation: rag-flash 1.6s ease-out; }
@keyframes rag-flash { 0% { box-shadow: 0 0 0 4px rgba(59, 130, 246, 0.7); } 100% { box-shadow: 0 0 0 0 transparent; } }
.rag-sources summary { cursor: pointer; }
.rag-sources .src-n { font-weight: 700; color: #2563eb; }
.dark .rag-sources .src-n { color: #93c5fd; }
.rag-sources .src-title { font-weight: 600; }
.rag-sources .src-meta { font-size: 0.85em; opacity: 0.75; margin: 4px 0; display: flex; gap: 10px; flex-wrap: wrap; }
.rag-sources .src-file { font-family: ui-monospace, monospace; }
.rag-sources .src-outlet { font-weight: 600; } \
.rag-sources .src-meta .unknown { font-style: italic; font-weight: normal; }
.rag-sources .src-text { margin: 4px 0 2px 0; padding: 2px 10px; border-left: 3px solid var(--border-color-primary);
  white-space: pre-wrap; max-height: 320px; overflow-y: auto; }
.rag-sources mark { background: rgba(250, 204, 21, 0.5); color: inherit; padding: 0 1px; border-radius: 2px; }
.src-empty { opacity: 0.75; }
#rag-sources-col { max-height: 80vh; overflow-y: auto; }
#rag-articles table { width: 100%; border-collapse: collapse; font-size: 0.92em; border: none !important; }
#rag-articles tr, #rag-articles th, #rag-articles td { border: none !important; }
#rag-articles th, #rag-articles td { text-align: left; padding: 5px 8px;
  border-bottom: 1px solid var(--border-color-primary) !important; vertical-align: top; }
#rag-articles .num { text-align: right; white-space: nowrap; }
#rag-articles tr.art-story td { font-weight: 600; padding-top: 12px; } \
#rag-articles tr.in-story td:first-child { padding-left: 20px; }
#rag-articles .unknown { font-style: italic; opacity: 0.7; } \
.art-version, .src-copies { font-size: 0.85em; opacity: 0.8; }
#rag-status .rag-status, #rag-status .rag-status li { list-style: none !important; padding: 0; margin: 4px 0; }
.rag-status .status-ok::before { content: "✓ "; color: #16a34a; }
.rag-status .status-error::before { content: "✗ "; color: #dc2626; }
"""

# A click on a [n] marker shows that answer's sources, opens passage n and scrolls to it.
# One listener on the document (capture phase, so the chat's own link handling never runs).
CITE_JS = """
if (!window.__ragCiteClicks) {
  window.__ragCiteClicks = true;
  document.addEventListener('click', (event) => {
    const link = event.target && event.target.closest ? event.target.closest('a.cite') : null;
    if (!link) return;
    const m = (link.getAttribute('href') || '').match(/^#src-(\\d+)-(\\d+)$/);
    if (!m) return;
    event.preventDefault();
    event.stopPropagation();
    document.querySelectorAll('.rag-sources section.turn').forEach((s) => { s.hidden = s.dataset.turn !== m[1]; });
    const target = document.getElementById('src-' + m[1] + '-' + m[2]);
    if (!target) return;
    target.open = true;
    target.scrollIntoView({block: 'nearest'});
    target.classList.remove('flash');
    void target.offsetWidth;
    target.classList.add('flash');
  }, true);
}
"""


def build_app(pipeline: Pipeline) -> gr.Blocks:
    """The chat and Articles pages for ``pipeline`` (a :class:`rag.api.Pipeline` or a stand-in)."""
    settings = getattr(pipeline, "settings", None)
    default_generator = getattr(settings, "generator", "extractive")
    default_k = min(int(getattr(settings, "top_k", 5)), MAX_TOP_K)
    limit_mb = float(getattr(settings, "max_upload_mb", 10.0))

    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        turns = gr.State([])  # [{"question": str, "answer": Answer | None}], one per question asked
        gr.Markdown(
            f"## {TITLE}\nAsk about the indexed German news articles. Every answer cites its passages: "
            "click a **[n]** to see the passage with the cited words highlighted."
        )
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=420):
                        chat = gr.Chatbot(
                            label="Conversation",
                            elem_id="rag-chat",
                            height=520,
                            render_markdown=False,
                            sanitize_html=True,
                            allow_tags=False,
                            feedback_options=None,
                            layout="bubble",
                            buttons=[],  # copy would hand out the message HTML, not its text
                            placeholder="Ask a question about the articles, e.g. *Wann treffen sich Kim und Putin?* "
                            "Follow-up questions may refer to the earlier ones.",
                        )
                        with gr.Row():
                            question = gr.Textbox(
                                show_label=False,
                                placeholder="Your question …",
                                scale=5,
                                elem_id="rag-question",
                                max_lines=4,
                                autofocus=True,
                            )
                            ask = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="rag-ask")
                        with gr.Accordion("Settings and filters", open=False, elem_id="rag-settings"):
                            with gr.Row():
                                generator = gr.Dropdown(
                                    GENERATORS, value=default_generator, label="Generator", elem_id="rag-generator"
                                )
                                top_k = gr.Slider(
                                    1,
                                    MAX_TOP_K,
                                    value=default_k,
                                    step=1,
                                    label="Passages per question",
                                    elem_id="rag-top-k",
                                )
                                show_scores = gr.Checkbox(False, label="Show retrieval scores", elem_id="rag-scores")
                            with gr.Row(elem_id="rag-filters"):  # applied inside the search: k stays full
                                outlets = gr.Dropdown(
                                    [],
                                    value=[],
                                    multiselect=True,
                                    label="Outlets (none: all)",
                                    elem_id="rag-outlets",
                                    scale=2,
                                )
                                since = gr.Textbox(
                                    label="Published since", placeholder=DAY_HINT, max_lines=1, elem_id="rag-since"
                                )
                                until = gr.Textbox(
                                    label="Published until", placeholder=DAY_HINT, max_lines=1, elem_id="rag-until"
                                )
                            # What the next question will use, as the server received it: a
                            # changed control shows here only once the page has committed it.
                            applied = gr.HTML(applied_html(default_generator, default_k, False), elem_id="rag-applied")
                        new_chat = gr.Button("New conversation", size="sm", elem_id="rag-new")
                    with gr.Column(scale=2, min_width=320, elem_id="rag-sources-col"):
                        sources = gr.HTML(
                            render.sources_html([]),
                            elem_id="rag-sources",
                            head=f"<style>{CSS}</style>",
                            js_on_load=CITE_JS,
                        )
            with gr.Tab("Articles", id="articles"):
                shown = gr.Dropdown(
                    [], value=[], multiselect=True, label="Show outlets (none: all)", elem_id="rag-article-outlets"
                )
                articles = gr.HTML(elem_id="rag-articles")
                with gr.Row(equal_height=False):
                    with gr.Column():
                        upload = gr.File(
                            label=f"Upload articles (.txt, .md, .html; at most {limit_mb:g} MB each)",
                            file_count="multiple",
                            file_types=UPLOAD_TYPES,
                            elem_id="rag-upload",
                            height=140,
                        )
                    with gr.Column():
                        to_remove = gr.Dropdown([], label="Article to remove", elem_id="rag-remove-choice")
                        remove = gr.Button("Remove article", variant="stop", elem_id="rag-remove")
                status = gr.HTML(elem_id="rag-status")

        def respond(
            text: str,
            messages: list,
            state: list,
            gen: str,
            k: float,
            scores: bool,
            chosen: list[str] | None,
            first: str,
            last: str,
        ) -> Iterator[tuple[str, list, list, str]]:
            yield from chat_turn(pipeline, text, messages, state, gen, int(k), scores, chosen, first, last)

        def refresh() -> tuple[str, Any, Any, Any]:
            return article_views(pipeline)

        def on_upload(
            files: list[str] | None,
            chosen: list[str] | None,
            only: list[str] | None,
            progress: gr.Progress = gr.Progress(),
        ) -> tuple[Any, ...]:
            status_value = upload_files(pipeline, files or [], progress)
            return (status_value, None, *article_views(pipeline, chosen, only))

        def on_remove(
            source: str | None, chosen: list[str] | None, only: list[str] | None
        ) -> tuple[str, Any, Any, Any, Any]:
            return (remove_article(pipeline, source), *article_views(pipeline, chosen, only))

        chat_io: dict[str, Any] = dict(
            inputs=[question, chat, turns, generator, top_k, show_scores, outlets, since, until],
            outputs=[question, chat, turns, sources],
        )
        question.submit(respond, **chat_io)
        ask.click(respond, **chat_io)
        new_chat.click(
            lambda: ("", [], [], render.sources_html([])), outputs=[question, chat, turns, sources], queue=False
        )
        chat.clear(lambda: ([], render.sources_html([])), outputs=[turns, sources], queue=False)
        show_scores.change(
            lambda state, s: render.sources_html([t["answer"] for t in state], show_scores=s),
            inputs=[turns, show_scores],
            outputs=sources,
            queue=False,
        )
        for control in (generator, top_k, show_scores, outlets, since, until):
            control.change(
                applied_html,
                inputs=[generator, top_k, show_scores, outlets, since, until],
                outputs=applied,
                queue=False,
            )
        upload.upload(
            on_upload, inputs=[upload, outlets, shown], outputs=[status, upload, articles, to_remove, outlets, shown]
        )
        remove.click(
            on_remove, inputs=[to_remove, outlets, shown], outputs=[status, articles, to_remove, outlets, shown]
        )
        shown.input(lambda only: article_views(pipeline, None, only)[0], inputs=shown, outputs=articles)
        app.load(refresh, outputs=[articles, to_remove, outlets, shown])
    return app


# ----- handlers (plain functions of the pipeline: testable without a browser)
def applied_html(
    generator: str | None,
    top_k: float,
    show_scores: bool,
    outlets: Sequence[str] | None = None,
    since: str | None = "",
    until: str | None = "",
) -> str:
    """The settings and filters the next question is sent with (the state the page reports)."""
    k = int(top_k)
    scores = "scores shown" if show_scores else "scores hidden"
    limits = [", ".join(outlets or ())] + [
        f"{word} {value.strip()}" for word, value in (("since", since or ""), ("until", until or "")) if value.strip()
    ]
    only = "; only " + ", ".join(x for x in limits if x) if any(limits) else ""
    return (
        f'<div class="rag-applied" data-top-k="{k}">Next question: {k} passage{"s" if k != 1 else ""}, '
        f"generator {html.escape(str(generator or 'default'))}, {scores}{html.escape(only)}</div>"
    )


def chat_turn(
    pipeline: Pipeline,
    text: str,
    messages: list,
    state: list,
    generator: str | None,
    top_k: int,
    show_scores: bool,
    outlets: Sequence[str] | None = None,
    since: str | None = "",
    until: str | None = "",
) -> Iterator[tuple[str, list, list, str]]:
    """One question: yields (question box, chat messages, turns state, sources panel) as the answer streams.
    ``outlets``, ``since`` and ``until`` filter the articles it may draw on (a bad date is a chat message)."""
    text = (text or "").strip()
    if not text:
        yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return
    messages = [
        *(messages or []),
        {"role": "user", "content": render.user_html(text)},
        {"role": "assistant", "content": render.pending_html()},
    ]
    history = [t["question"] for t in state or [] if t["answer"] is not None]
    state = [*(state or []), {"question": text, "answer": None}]
    turn = len(state)
    panel = gr.skip()
    yield "", messages, state, panel
    answer = None
    try:
        draft = ""
        filters = make_filters(outlet=list(outlets or ()), since=(since or "").strip(), until=(until or "").strip())
        extra: dict[str, Any] = (
            {"filters": filters} if filters else {}
        )  # only then: a pipeline without filters keeps working
        for piece in pipeline.ask_stream(text, history, generator or None, top_k=top_k, **extra):
            if isinstance(piece, Answer):
                answer = piece
                break
            draft += piece
            messages = [*messages[:-1], {"role": "assistant", "content": render.draft_html(draft)}]
            yield gr.skip(), messages, gr.skip(), gr.skip()
        if answer is None:
            raise RuntimeError("the answer stream ended without a final answer")
        content = render.answer_html(answer, turn)
    except RagError as exc:
        content = render.error_html(_one_line(exc))
    except Exception as exc:  # a bug: keep the traceback in the server log, not in the page
        log.exception("answering %r failed", text)
        content = render.error_html(
            f"Something went wrong while answering ({type(exc).__name__}: "
            f"{_one_line(exc)}). The details are in the server log."
        )
    messages = [*messages[:-1], {"role": "assistant", "content": content}]
    if answer is not None:
        state = [*state[:-1], {"question": text, "answer": answer}]
        panel = render.sources_html([t["answer"] for t in state], show_scores=show_scores)
    yield "", messages, state, panel


def list_articles(pipeline: Pipeline) -> tuple[str, Any]:
    """(articles table, remove-dropdown update)."""
    return article_views(pipeline)[:2]


def article_views(
    pipeline: Pipeline, chosen_outlets: Sequence[str] | None = None, shown_outlets: Sequence[str] | None = None
) -> tuple[str, Any, Any, Any]:
    """(articles table, remove-dropdown update, chat outlet-filter update, table outlet-filter update) from
    one read of the articles; a chosen outlet that no article has any more is dropped from either filter."""
    try:
        infos = pipeline.sources()
    except RagError as exc:
        return (
            render.status_html([("error", _one_line(exc))]),
            gr.update(choices=[], value=None),
            gr.update(choices=[], value=[]),
            gr.update(choices=[], value=[]),
        )
    choices = [(f"{a.title[:60]} ({a.source})" if a.title else a.source, a.source) for a in infos]
    names = outlet_names(infos)
    chosen, shown = ([o for o in given or () if o in names] for given in (chosen_outlets, shown_outlets))
    return (
        render.articles_html(infos, shown),
        gr.update(choices=choices, value=None),
        gr.update(choices=names, value=chosen),
        gr.update(choices=names, value=shown),
    )


def upload_files(pipeline: Pipeline, paths: Sequence[str], progress: Any = None) -> str:
    """Index each uploaded file; Gradio's temporary copy is deleted whatever happens."""
    limit = int(float(getattr(pipeline.settings, "max_upload_mb", 10.0)) * 1024 * 1024)
    lines: list[tuple[str, str]] = []
    for i, path in enumerate(paths):
        name = Path(path).name
        if progress is not None:
            progress((i, len(paths)), desc=f"Indexing {name}")
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)  # one byte over the limit is enough for the pipeline to refuse it
            report = pipeline.index_upload(name, data)
            verb = "updated" if report.updated else "unchanged" if report.unchanged else "indexed"
            lines.append(("ok", f"{name}: {verb} ({report.chunks} passages embedded). You can ask about it now."))
        except RagError as exc:
            lines.append(("error", _one_line(exc)))
        except OSError as exc:
            lines.append(("error", f"{name}: could not read the upload ({exc.strerror or type(exc).__name__})."))
        except Exception as exc:
            log.exception("indexing upload %r failed", name)
            lines.append(
                ("error", f"{name}: indexing failed ({type(exc).__name__}). The details are in the server log.")
            )
        finally:
            _delete(path)
    if progress is not None and paths:
        progress((len(paths), len(paths)), desc="Done")
    return render.status_html(lines)


def remove_article(pipeline: Pipeline, source: str | None) -> str:
    if not source:
        return render.status_html([("error", "Choose an article to remove first.")])
    try:
        pipeline.remove(source)
    except RagError as exc:
        return render.status_html([("error", _one_line(exc))])
    return render.status_html([("ok", f"Removed {source}.")])


def _delete(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# ----- launching
def launch(
    pipeline: Pipeline, settings: Settings | None = None, *, block: bool = True, **launch_kwargs: Any
) -> gr.Blocks:
    """Index the sample articles into an empty store, load the models, serve on settings.host:settings.port.

    Never shared, never phoning home; a login when both auth_user and auth_password are set.
    ``block=False`` returns once the server is up (tests; call ``app.close()`` after).
    """
    settings = settings if settings is not None else pipeline.settings
    if not pipeline.sources():
        print("The store is empty: indexing the sample articles first …", file=sys.stderr, flush=True)
        report = pipeline.index()
        print(report.summary(), file=sys.stderr, flush=True)
    try:  # load the models now rather than on the first question; without an LLM the rest still works
        _ = pipeline.retriever
        _ = pipeline.answerer
    except RagError as exc:
        print(f"warning: {_one_line(exc)}", file=sys.stderr, flush=True)
    else:
        pipeline.warm()  # primes the LLM's prompt cache while the server starts
    app = build_app(pipeline)
    auth = (settings.auth_user, settings.auth_password) if settings.auth_user and settings.auth_password else None
    app.queue(default_concurrency_limit=2)
    app.launch(
        server_name=settings.host,
        server_port=settings.port,
        auth=auth,
        share=False,
        max_file_size=int(settings.max_upload_mb * 1024 * 1024),
        prevent_thread_lock=True,
        show_error=False,
        ssr_mode=False,
        mcp_server=False,
        quiet=True,
        **launch_kwargs,
    )
    login = " (login required)" if auth else ""
    print(f"Chat running on {app.local_url}{login}; Ctrl-C stops it.", file=sys.stderr, flush=True)
    if block:
        app.block_thread()
    return app
