"""The LLM generators for real: the packaged 0.5B model through llama-cpp-python, in
process (``local``) and behind llama-cpp-python's own OpenAI-compatible server on
127.0.0.1 (``openai``). What is asserted is what the product guarantees whatever the
model writes: streaming, citations that resolve to verbatim article spans, the grounding
check, abstention off-topic, and clear errors. Answer quality is measured by ``rag eval``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import PYTHON, clean_env, free_port, wait_until_up
from model_support import packaged_model_cache

from rag import Pipeline, Settings
from rag.errors import ModelUnavailable

pytestmark = pytest.mark.slow
SMALL = "qwen2.5-0.5b"
QUESTION = "Wie viele Raketen kann das U-Boot tragen?"


def assert_grounded(pipeline: Pipeline, answer) -> None:
    if answer.abstained:
        assert not answer.citations
        return
    assert answer.citations, answer.answer
    for c in answer.citations:
        assert pipeline.article(c.source).text[c.start : c.end] == c.quote
        assert 1 <= c.n <= len(answer.passages) and f"[{c.n}" in answer.answer


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    pytest.importorskip("llama_cpp")
    return packaged_model_cache(tmp_path_factory.mktemp("models"), SMALL)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("store")
    Pipeline(Settings(store=path, embedder="fake", generator="extractive")).index()
    return path


def test_local_model_reads_the_sentences_and_answers_grounded(cache, store):
    """The local model is a reader: one prompt evaluation gives its choice among the numbered
    sentences and its P(none); the German answer is the chosen sentence, verbatim; an English
    question also gets the model's English words, streamed, and kept only when supported."""
    pipeline = Pipeline(
        Settings(
            store=store, cache_dir=cache, embedder="fake", generator="local", local_model=SMALL, max_answer_tokens=80
        )
    )
    answer = pipeline.ask(QUESTION)
    assert answer.generator == f"local:{SMALL}"
    assert_grounded(pipeline, answer)
    assert 0.0 <= answer.signals["llm_none"] <= 1.0 and "read_s" in answer.timings
    if not answer.abstained:
        quote = answer.citations[0].quote.rstrip(".!? ")
        assert answer.answer.startswith(quote)  # verbatim: the reader chose, it did not write
    off_topic = pipeline.ask("Wie hoch ist die Inflation in Japan?")
    assert_grounded(pipeline, off_topic)
    # What the decision relies on: the model puts more weight on "none" when nothing answers.
    assert off_topic.signals["llm_none"] > answer.signals["llm_none"]
    english = [p for p in pipeline.ask_stream("How many Raketen can the U-Boot carry?")]
    final = english[-1]
    assert final.language == "en" and all(isinstance(p, str) for p in english[:-1])
    assert_grounded(pipeline, final)


def test_warming_reads_the_readers_fixed_prompt(cache, store):
    from rag.answer.prompts import PICK_SYSTEM

    pipeline = Pipeline(Settings(store=store, cache_dir=cache, embedder="fake", generator="local", local_model=SMALL))
    pipeline.warm().join()
    llm = pipeline.answerer.generator._llm
    held = llm.detokenize(list(llm.eval_tokens)).decode("utf-8", "ignore")
    assert PICK_SYSTEM["en"][:60] in held  # the last language warmed is in the KV cache
    assert pipeline.ready
    pipeline.close()


@pytest.fixture(scope="module")
def llama_server(cache, tmp_path_factory) -> str:
    """llama-cpp-python's OpenAI-compatible server with the small model on 127.0.0.1."""
    model = next((cache / "models").glob("*0.5b*.gguf"))
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"  # a file: its loading chatter fills a pipe
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "4096",
            "--model_alias",
            "small",
        ],
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    url = f"http://127.0.0.1:{port}/v1"
    wait_until_up(proc, f"{url}/models", log, "llama_cpp.server", 180)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_openai_generator_against_a_real_llama_cpp_server(llama_server, store):
    pipeline = Pipeline(
        Settings(
            store=store,
            embedder="fake",
            generator="openai",
            openai_base_url=llama_server,
            openai_model="small",
            max_answer_tokens=80,
        )
    )
    pieces = [p for p in pipeline.ask_stream(QUESTION) if isinstance(p, str)]
    assert len(pieces) > 1  # server-sent events arrive as they are generated
    answer = pipeline.ask(QUESTION)
    assert answer.generator == "openai:small"
    assert_grounded(pipeline, answer)
    english = pipeline.ask("How many missiles can the submarine carry?")
    assert english.language == "en"
    assert_grounded(pipeline, english)


@pytest.mark.timeout(60)  # a hang fails the test; refusal is immediate
def test_openai_generator_with_no_server_fails_clearly(store):
    port = free_port()  # nothing listens here
    pipeline = Pipeline(
        Settings(store=store, embedder="fake", generator="openai", openai_base_url=f"http://127.0.0.1:{port}/v1")
    )
    with pytest.raises(ModelUnavailable, match="Cannot reach the LLM server"):
        pipeline.ask(QUESTION)
