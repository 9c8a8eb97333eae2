"""The ``rag`` command line (also ``python -m rag``): index articles, list and remove
them, retrieve passages, ask questions.

Subcommands are registered in :data:`COMMANDS` (name -> :class:`Command`): adding one
(``chat``, ``serve``, ``eval``, ``bench``) is a function that declares its arguments, a
function that runs it, and one entry in that dict. The pipeline is built only when a
subcommand first needs it, so ``rag --help`` and usage errors stay quick: importing
this module loads no model and no chromadb, torch or llama-index.

Expected failures are :class:`~rag.errors.RagError` subclasses; :func:`main` turns them
into one ``error: ...`` line on stderr and the exit code of their class. Anything else is
a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from rag.errors import BadInput, EmptyStore, ModelUnavailable, NotFound, RagError, StoreUnavailable
from rag.settings import Settings

if TYPE_CHECKING:  # imported lazily: `rag --help` loads none of it
    from rag.api import Pipeline
    from rag.types import Answer, ArticleMeta, Filters

# Set before anything heavy is imported: nothing this program does may reach the network.
from rag.runtime import set_offline_env

EXIT_OK = 0
EXIT_PARTIAL = 1  # some files or input lines failed, the others worked
EXIT_INTERRUPTED = 130
SNIPPET_CHARS = 240

EPILOG = f"""\
global options can also be set as RAG_* environment variables (RAG_STORE,
RAG_CHROMA_URL, RAG_EMBEDDER, ...) or in a TOML settings file (--settings FILE,
RAG_SETTINGS_FILE, else ./rag.toml); a flag wins over both.

exit codes:
  {EXIT_OK}    success
  {EXIT_PARTIAL}    partly done: some files (index) or input lines (retrieve -, ask -) failed
  {BadInput.exit_code}    bad usage or input: unknown option, missing path, empty question, bad setting
  {NotFound.exit_code}    no indexed article has that name (remove)
  {EmptyStore.exit_code}    nothing is indexed yet: run `rag index` first
  {StoreUnavailable.exit_code}    the Chroma store cannot be opened or the server cannot be reached
  {ModelUnavailable.exit_code}    a model or model backend is missing or cannot be loaded
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)
"""

PipelineFactory = Callable[[Settings], "Pipeline"]  # (tests pass a double)


class Context:
    """What a subcommand gets besides its arguments: the settings, and the pipeline on first use."""

    def __init__(self, settings: Settings, pipeline_factory: PipelineFactory | None = None) -> None:
        self.settings = settings
        self._factory = pipeline_factory
        self._pipeline: Pipeline | None = None

    def close(self) -> None:
        """Join the pipeline's background work, so nothing runs while the interpreter exits."""
        close = getattr(self._pipeline, "close", None)
        if close is not None:
            close()

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            factory = self._factory
            if factory is None:
                from rag.api import Pipeline

                factory = Pipeline
            self._pipeline = factory(self.settings)
        return self._pipeline


@dataclass(frozen=True)
class Command:
    """One subcommand: its help line, its arguments, and what it does (returns the exit code)."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Context], int]


# ----- rag index
def _index_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="files or folders of .txt, .md or .html articles (default: the sample articles)",
    )
    parser.add_argument(
        "--prune", action="store_true", help="remove indexed articles whose files are gone from the given folders"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _index(args: argparse.Namespace, ctx: Context) -> int:
    missing = [p for p in args.paths if not Path(p).expanduser().exists()]
    if missing:
        raise BadInput(f"No such file or folder: {', '.join(missing)}")
    with _progress_bar() as progress:
        report = ctx.pipeline.index(args.paths or None, prune=args.prune, progress=progress)
    if args.json:
        _print_json(report.to_json())
    else:
        print(report.summary())
        for failure in report.failed:
            print(f"skipped {failure.source}: {failure.reason}")
        for warning in getattr(report, "warnings", []):
            print(f"warning {warning.source}: {warning.reason}")
    worked = report.added or report.updated or report.unchanged or report.removed
    if not worked and not report.failed:
        raise BadInput(f"No .txt, .md or .html files found in {', '.join(args.paths)}.")
    if report.failed and not worked:
        raise BadInput(f"None of the files could be indexed ({len(report.failed)} skipped).")
    return EXIT_PARTIAL if report.failed else EXIT_OK


@contextmanager
def _progress_bar() -> Iterator[Callable[[int, int, str], None]]:
    """A tqdm bar on stderr (only when stderr is a terminal), fed by Pipeline.index's callback."""
    bar = None

    def update(done: int, total: int, source: str) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="file", file=sys.stderr, disable=None, leave=False, dynamic_ncols=True)
        bar.set_postfix_str(source[-40:], refresh=False)
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


# ----- rag retrieve
def _retrieve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "question",
        metavar="QUESTION",
        help="the question; '-' reads one question per line from stdin and prints JSON lines",
    )
    parser.add_argument(
        "-k", type=_positive_int, default=None, metavar="N", help="number of passages (default: the top_k setting)"
    )
    _filter_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")


def _filter_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters (applied inside the search, so k stays full)")
    group.add_argument(
        "--outlet",
        action="append",
        metavar="NAME",
        help="only articles of this outlet (case does not matter); repeat for several",
    )
    group.add_argument(
        "--source",
        action="append",
        metavar="SOURCE",
        help="only this article, as `rag sources` lists it; repeat for several",
    )
    group.add_argument("--since", metavar="DATE", help="published on or after DATE (2023-09-12, 2023-09 or 2023)")
    group.add_argument("--until", metavar="DATE", help="published on or before DATE (2023-09-12, 2023-09 or 2023)")


def _filters(args: argparse.Namespace) -> Filters | None:
    from rag.filters import make_filters

    return make_filters(args.outlet, args.source, args.since, args.until) or None


def _retrieve(args: argparse.Namespace, ctx: Context) -> int:
    filters = _filters(args)
    if args.question == "-":
        return _json_lines(lambda line: _retrieval_json(ctx.pipeline, line, args.k, filters))
    if args.json:
        _print_json(_retrieval_json(ctx.pipeline, args.question, args.k, filters))
        return EXIT_OK
    passages, _ = ctx.pipeline.retrieve_timed(args.question, args.k, *([filters] if filters else []))
    for n, p in enumerate(passages, start=1):
        print(f"{n}. {p.source}{_meta_note(p.meta)}  score {p.score:.4f}  chars {p.start}-{p.end}")
        print(f"   {_snippet(p.text)}")
    return EXIT_OK


def _retrieval_json(pipeline: Pipeline, question: str, k: int | None, filters: Filters | None = None) -> dict[str, Any]:
    passages, seconds = pipeline.retrieve_timed(question, k, *([filters] if filters else []))
    out = {
        "question": question,
        "passages": [p.to_json() for p in passages],
        "timings": {"retrieve_s": round(seconds, 4)},
    }
    if filters:
        out["filters"] = filters.to_json()
    return out


def _meta_note(meta: ArticleMeta) -> str:
    """ "  (Outlet, 2023-09-12)" for a passage's article; "" when it names neither."""
    parts = [x for x in (meta.outlet, meta.date[:10]) if x]
    return f"  ({', '.join(parts)})" if parts else ""


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= SNIPPET_CHARS:
        return text
    return text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"


# ----- rag sources / rag remove
def _sources_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON array")


def _sources(args: argparse.Namespace, ctx: Context) -> int:
    infos = ctx.pipeline.sources()
    if args.json:
        _print_json(
            [
                {"source": a.source, "title": a.title, "chunks": a.chunks, "chars": a.chars, "meta": a.meta.to_json()}
                for a in infos
            ]
        )
    elif not infos:
        print(EmptyStore().args[0], file=sys.stderr)
    else:
        width = max(len("SOURCE"), *(len(a.source) for a in infos))
        print(f"{'SOURCE':<{width}}  {'CHUNKS':>6}  {'CHARS':>7}  TITLE")
        for a in infos:
            title = a.title if len(a.title) <= 70 else a.title[:69] + "…"
            print(f"{a.source:<{width}}  {a.chunks:>6}  {a.chars:>7}  {title}")
    return EXIT_OK


def _remove_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help="the article's name as `rag sources` lists it")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _remove(args: argparse.Namespace, ctx: Context) -> int:
    ctx.pipeline.remove(args.source)
    if args.json:
        _print_json({"removed": args.source})
    else:
        print(f"removed {args.source}")
    return EXIT_OK


# ----- rag ask
def _ask_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "questions",
        nargs="+",
        metavar="QUESTION",
        help="one or more questions, the successive turns of one conversation; '-' reads stdin: "
        "a plain line is one question, a line holding a JSON array of strings is one "
        "conversation (answered for its last turn); prints JSON lines",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per turn")
    parser.add_argument(
        "--generator",
        choices=_choices("generator"),
        default=None,
        help="answer generator (default: the generator setting)",
    )
    _filter_arguments(parser)


def _ask(args: argparse.Namespace, ctx: Context) -> int:
    filters = _filters(args)
    if args.questions == ["-"]:
        return _json_lines(lambda line: _ask_line(ctx.pipeline, line, args.generator, filters))
    if "-" in args.questions:
        raise BadInput("'-' (read questions from stdin) must be the only QUESTION.")
    extra: dict[str, Any] = {"filters": filters} if filters else {}
    for turn, question in enumerate(args.questions):
        answer = ctx.pipeline.ask(question, history=args.questions[:turn], generator=args.generator, **extra)
        if args.json:
            _print_json(answer.to_json())
        else:
            _print_answer(answer, show_question=len(args.questions) > 1)
    return EXIT_OK


def _ask_line(pipeline: Pipeline, line: str, generator: str | None, filters: Filters | None = None) -> dict[str, Any]:
    turns = _conversation(line)
    extra: dict[str, Any] = {"filters": filters} if filters else {}
    return pipeline.ask(turns[-1], history=turns[:-1], generator=generator, **extra).to_json()


def _conversation(line: str) -> list[str]:
    """A stdin line as conversation turns: a JSON array of strings, else the line itself."""
    if not line.startswith("["):
        return [line]
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return [line]  # a question that happens to start with "["
    if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value):
        raise BadInput("A JSON line must be a non-empty array of strings: the turns of one conversation.")
    return value


def _print_answer(answer: Answer, show_question: bool) -> None:
    if show_question:
        print(f"> {answer.question}")
    print(answer.answer)
    for c in answer.citations:
        meta = answer.meta_of(c) if hasattr(answer, "meta_of") else None
        note = _meta_note(meta) if meta is not None else ""
        print(f"  [{c.n}] {c.source}{note}, chars {c.start}-{c.end}: {_snippet(c.quote)}")
    for n in sorted({c.n for c in answer.citations}):
        names = answer.sources_of(n) if hasattr(answer, "sources_of") else []
        if len(names) > 1:
            print(f"  [{n}] {len(names)} {'Quellen' if answer.language == 'de' else 'sources'}: {', '.join(names)}")
    period = getattr(answer, "period", None)
    if period:
        span = f"{period['since'] or '…'} – {period['until'] or '…'}"
        print(
            f'  ("{period["words"]}": published {span}'
            + (")" if period["applied"] else "; nothing was published then, so all articles were searched)")
        )
    print()


# ----- shared helpers
def _json_lines(handle: Callable[[str], dict[str, Any]]) -> int:
    """One JSON object out per non-blank stdin line; a bad line gives {"question", "error"} and the rest go on."""
    lines = failed = 0
    for raw in sys.stdin:
        line = raw.strip()
        if not line:
            continue
        lines += 1
        try:
            out = handle(line)
        except BadInput as exc:
            failed += 1
            out = {"question": line, "error": _one_line(exc)}
        _print_json(out)
    if failed and failed == lines:
        return BadInput.exit_code
    return EXIT_PARTIAL if failed else EXIT_OK


def _print_json(value: object) -> None:
    print(json.dumps(value, ensure_ascii=False), flush=True)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _choices(field: str) -> tuple[str, ...]:
    """The allowed values of a Literal settings field (one source of truth for the choices)."""
    return get_args(Settings.model_fields[field].annotation)


# ----- rag serve (the server itself is rag.server, imported only when it runs)
def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", metavar="H", help="address to bind (default: the host setting, 127.0.0.1)")
    parser.add_argument("--port", type=_positive_int, metavar="P", help="port (default: the port setting, 7860)")


def _serve(args: argparse.Namespace, ctx: Context) -> int:
    from rag.server import serve

    return serve(ctx.pipeline, host=args.host, port=args.port)


# ----- rag chat
def _chat(args: argparse.Namespace, ctx: Context) -> int:
    from ui import launch  # gradio loads only for this command

    settings = ctx.settings
    host, port = args.host or settings.host, args.port or settings.port
    if not 1 <= port <= 65535:
        raise BadInput(f"Port {port} is out of range: use 1 to 65535.")
    try:
        launch(ctx.pipeline, settings.with_(host=host, port=port))
    except OSError as exc:  # the port is taken or the address cannot be bound
        raise BadInput(
            f"Cannot start the chat on {host}:{port} ({_one_line(exc).split('. ')[0]}); "
            "choose another --port or --host."
        ) from None
    return EXIT_OK


# ----- rag mcp (the MCP server is rag.mcp, imported only when it runs)
def _mcp_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--http", action="store_true", help="serve streamable HTTP on 127.0.0.1 (at /mcp) instead of stdio"
    )
    parser.add_argument("--port", type=_positive_int, metavar="P", help="port for --http (default: 7861)")


def _mcp(args: argparse.Namespace, ctx: Context) -> int:
    if args.port is not None and not args.http:
        raise BadInput("--port is for --http; the stdio server has no port.")
    from rag.mcp import serve as serve_mcp

    return serve_mcp(ctx.pipeline, http=args.http, port=args.port)


# ----- eval: lives in the eval package; imported only when the command runs
EVAL_HELP = "evaluate retrieval, answers and grounding on a gold set (or compare two reports)"


def _eval_arguments(parser: argparse.ArgumentParser) -> None:
    from eval.cli import add_arguments

    add_arguments(parser)


def _eval(args: argparse.Namespace, ctx: Context) -> int:
    from eval.cli import run

    return run(args, ctx)


# ----- bench: lives in the eval package too
BENCH_HELP = "measure indexing, retrieval and answer speed here, beside a plain llama-index pipeline"


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    from eval.bench import add_arguments

    add_arguments(parser)


def _bench(args: argparse.Namespace, ctx: Context) -> int:
    from eval.bench import run

    return run(args, ctx)


# ----- doctor: rag.doctor, imported only when it runs; it never builds the pipeline
def _doctor_arguments(parser: argparse.ArgumentParser) -> None:
    from rag.doctor import add_arguments

    add_arguments(parser)


def _doctor(args: argparse.Namespace, ctx: Context) -> int:
    from rag.doctor import run

    return run(args, ctx)


# ----- registrations: add chat / serve / eval / bench here
COMMANDS: dict[str, Command] = {
    "index": Command("index article files and folders (default: the sample articles)", _index_arguments, _index),
    "retrieve": Command("show the passages that best match a question", _retrieve_arguments, _retrieve),
    "ask": Command("answer questions with cited passages", _ask_arguments, _ask),
    "sources": Command("list the indexed articles", _sources_arguments, _sources),
    "remove": Command("remove an indexed article", _remove_arguments, _remove),
    "chat": Command(
        "start the web chat (indexes the sample articles into an empty store first)", _serve_arguments, _chat
    ),
    "serve": Command("serve the HTTP API (/v1, OpenAI-compatible too) and the web chat", _serve_arguments, _serve),
    "eval": Command(EVAL_HELP, _eval_arguments, _eval),
    "bench": Command(BENCH_HELP, _bench_arguments, _bench),
    "doctor": Command(
        "check the installation: packages, models, the store and whether it answers "
        "(exit 0, or one 'problem:' line each)",
        _doctor_arguments,
        _doctor,
    ),
    "mcp": Command(
        "serve search, ask and the articles as MCP tools (stdio; --http for streamable HTTP)", _mcp_arguments, _mcp
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Ask questions about German news articles; every answer cites its passages.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--store", metavar="DIR", help="local Chroma folder (RAG_STORE)")
    parser.add_argument(
        "--chroma-url",
        metavar="URL",
        help="Chroma server, e.g. http://127.0.0.1:8000; overrides --store (RAG_CHROMA_URL)",
    )
    parser.add_argument("--settings", metavar="FILE", help="TOML settings file (RAG_SETTINGS_FILE)")
    parser.add_argument("--embedder", choices=_choices("embedder"), help="embedding backend (RAG_EMBEDDER)")
    parser.add_argument(
        "--embedder-model",
        metavar="M",
        help="model path or packaged name for sentence-transformers (RAG_EMBEDDER_MODEL)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        child = sub.add_parser(
            name,
            help=command.help,
            description=command.help,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(child)
    return parser


def build_settings(args: argparse.Namespace) -> Settings:
    """Settings from the file and RAG_* environment, then the global flags on top."""
    if args.settings:
        os.environ["RAG_SETTINGS_FILE"] = str(Path(args.settings).expanduser())
    settings_file = os.environ.get("RAG_SETTINGS_FILE")
    if settings_file and not Path(settings_file).is_file():
        raise BadInput(f"The settings file {settings_file} does not exist.")
    from pydantic import ValidationError

    try:
        return Settings().with_(
            store=Path(args.store).expanduser() if args.store else None,
            chroma_url=args.chroma_url,
            embedder=args.embedder,
            embedder_model=args.embedder_model,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise BadInput(
            f"Invalid settings ({problems}). Check the flags, RAG_* variables and the settings file."
        ) from None
    except (OSError, ValueError) as exc:  # unreadable or malformed TOML (TOMLDecodeError is a ValueError)
        raise BadInput(f"Cannot read the settings file {settings_file}: {_one_line(exc)}") from None


def main(argv: list[str] | None = None, *, pipeline_factory: PipelineFactory | None = None) -> int:
    """Run the command line; returns the exit code. ``pipeline_factory`` is the seam tests use."""
    set_offline_env()
    try:
        args = build_parser().parse_args(argv)
        ctx = Context(build_settings(args), pipeline_factory)
        return _run_and_close(COMMANDS[args.command], args, ctx)
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or EXIT_OK
        print(f"error: {exc.code}", file=sys.stderr)
        return BadInput.exit_code
    except RagError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `rag retrieve - | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PARTIAL


def _run_and_close(command: Command, args: argparse.Namespace, ctx: Context) -> int:
    try:
        return command.run(args, ctx)
    finally:
        try:
            ctx.close()
        except KeyboardInterrupt:
            # Ctrl-C while joining (or handled only now: another thread held the interpreter when it
            # came): finish the bounded work, then report the interrupt (exit 130), not the command's code.
            ctx.close()
            raise
