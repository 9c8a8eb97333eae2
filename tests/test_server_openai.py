"""The OpenAI-compatible endpoints of rag.server, called with the official ``openai`` client
against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rag import Answer, Citation
from rag.server import MODEL_ID, SOURCES_HEADING, ChatMessage, conversation, create_app, with_sources
from tests.fakes import ScriptedGenerator
from tests.server_support import QUESTION, SUBMARINE, SUBMARINE_Q, LiveServer, make_pipeline

openai = pytest.importorskip("openai", reason="pip install openai (requirements/test.txt)")

USER = {"role": "user", "content": QUESTION}


def client_for(url: str, api_key: str = "not-needed") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=api_key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pipeline = make_pipeline(tmp_path_factory.mktemp("openai"))
    pipeline.index()
    with LiveServer(create_app(pipeline, ui=False)) as url:
        yield url


@pytest.fixture
def client(server: str) -> openai.OpenAI:
    return client_for(server)


def test_models_lists_one_model(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL_ID]
    assert models.data[0].object == "model"


def test_chat_completion_answers_with_sources(client: openai.OpenAI, server: str) -> None:
    completion = client.chat.completions.create(model=MODEL_ID, messages=[USER])
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == MODEL_ID
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    ours = httpx.post(f"{server}/v1/ask", json={"question": QUESTION}, timeout=60).json()
    content = choice.message.content
    answer_part, sources = content.split(f"\n\n{SOURCES_HEADING}\n")
    assert answer_part == ours["answer"].strip()
    lines = sources.splitlines()
    assert len(lines) == len(ours["citations"])
    for line, c in zip(lines, ours["citations"], strict=True):
        assert line.startswith(f'[{c["n"]}] {c["source"]}: "') and c["quote"][:40] in line
    # the structured citations ride along in an extra field
    assert completion.model_extra["citations"] == ours["citations"]
    assert completion.model_extra["abstained"] is False


def test_chat_completion_streams_the_same_answer(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model=MODEL_ID, messages=[USER]).choices[0].message.content
    chunks = list(client.chat.completions.create(model=MODEL_ID, messages=[USER], stream=True))
    assert all(c.object == "chat.completion.chunk" and c.model == MODEL_ID for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len(chunks) > 3  # the text comes in pieces
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert [c["n"] for c in last.model_extra["citations"]] and last.model_extra["abstained"] is False
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])


def test_raw_stream_ends_with_done(server: str) -> None:
    body = {"model": MODEL_ID, "messages": [USER], "stream": True}
    with httpx.stream("POST", f"{server}/v1/chat/completions", json=body, timeout=60) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        data = [line[5:].strip() for line in r.iter_lines() if line.startswith("data:")]
    assert data[-1] == "[DONE]" and data.count("[DONE]") == 1


def test_unknown_model_name_and_extra_parameters_are_accepted(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o", messages=[USER], temperature=0.2, max_tokens=50, top_p=1, user="someone"
    )
    assert completion.model == MODEL_ID and completion.choices[0].message.content


def test_content_parts_are_read(client: openai.OpenAI) -> None:
    parts = {"role": "user", "content": [{"type": "text", "text": QUESTION}]}
    completion = client.chat.completions.create(model=MODEL_ID, messages=[parts])
    assert completion.model_extra["citations"]


@pytest.mark.parametrize("stream", [False, True])
def test_bad_requests_raise_clear_client_errors(client: openai.OpenAI, stream: bool) -> None:
    cases = [
        ([{"role": "user", "content": "   "}], "The question is empty"),
        ([{"role": "system", "content": "Be nice."}], "no user message"),
        ([], "messages"),
    ]
    for messages, needle in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model=MODEL_ID, messages=messages, stream=stream)
        assert caught.value.status_code == 400
        assert needle in caught.value.message, caught.value.message


def test_empty_store_is_a_conflict(tmp_path: Path) -> None:
    with LiveServer(create_app(make_pipeline(tmp_path), ui=False)) as url:
        with pytest.raises(openai.ConflictError, match="No articles are indexed"):
            client_for(url).chat.completions.create(model=MODEL_ID, messages=[USER])


def test_history_and_checked_stream_with_a_scripted_llm(tmp_path: Path) -> None:
    """Earlier user turns reach the rewrite as history (system and assistant turns do not), and
    the stream carries the checked answer, never the draft's unsupported sentence."""

    def reply(request) -> str:
        prompt = request.messages[-1]["content"]
        if "<auszug" not in prompt:  # the follow-up rewrite
            return SUBMARINE_Q
        block = next(b for b in prompt.split("</auszug>") if "zehn Raketen" in b)
        n = int(block.split('nr="')[1].split('"')[0])
        return f"{SUBMARINE} [{n}] Der Mond besteht aus grünem Käse [{n}]."

    generator = ScriptedGenerator(reply)
    pipeline = make_pipeline(tmp_path, generator=generator)
    pipeline.index()
    messages = [
        {"role": "system", "content": "SYSTEM-TEXT"},
        {"role": "user", "content": "Was weiß man über das neue U-Boot?"},
        {"role": "assistant", "content": "ASSISTANT-TEXT"},
        {"role": "user", "content": "Wie viele Raketen kann es tragen?"},
    ]
    with LiveServer(create_app(pipeline, ui=False)) as url:
        chunks = list(client_for(url).chat.completions.create(model=MODEL_ID, messages=messages, stream=True))
    rewrite = generator.requests[0].messages[-1]["content"]
    assert "Was weiß man über das neue U-Boot?" in rewrite and "Wie viele Raketen kann es tragen?" in rewrite
    assert not any(
        "SYSTEM-TEXT" in m["content"] or "ASSISTANT-TEXT" in m["content"]
        for r in generator.requests
        for m in r.messages
    )
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "zehn Raketen" in content and "Käse" not in content
    assert f"\n\n{SOURCES_HEADING}\n[" in content


# ----- pure helpers
@pytest.mark.parametrize(
    ("messages", "question", "history"),
    [
        ([("user", "Frage?")], "Frage?", []),
        ([("system", "s"), ("user", "A?"), ("assistant", "a"), ("user", "B?")], "B?", ["A?"]),
        ([("user", "A?"), ("user", "B?"), ("assistant", "b")], "B?", ["A?"]),  # the last *user* message
        ([("user", " "), ("user", " A? "), ("user", "B?")], "B?", ["A?"]),  # blank earlier turns are dropped
        ([("user", f"Q{i}?") for i in range(30)], "Q29?", [f"Q{i}?" for i in range(19, 29)]),  # the last ten
        ([("user", "x" * 5000), ("user", "B?")], "B?", ["x" * 2000]),  # each cut like a question
    ],
)
def test_conversation(messages: list[tuple[str, str]], question: str, history: list[str]) -> None:
    assert conversation([ChatMessage(role=r, content=c) for r, c in messages]) == (question, history)


def test_with_sources() -> None:
    long_quote = "Wort " * 60
    answer = Answer(
        question="q",
        answer="Eins [1]. Zwei [2].",
        abstained=False,
        citations=(
            Citation(n=1, passage_id="p1", source="a/b.txt", start=0, end=9, quote="Eins  ist\nda."),
            Citation(n=2, passage_id="p2", source="c.txt", start=5, end=305, quote=long_quote),
        ),
    )
    text = with_sources(answer)
    lines = text.splitlines()
    assert lines[:3] == ["Eins [1]. Zwei [2].", "", SOURCES_HEADING]
    assert lines[3] == '[1] a/b.txt: "Eins ist da."'
    assert lines[4].startswith('[2] c.txt: "Wort Wort') and lines[4].endswith(' …"') and len(lines[4]) < 190
    nothing = Answer(question="q", answer="Dazu enthalten die Artikel keine Angabe.", abstained=True)
    assert with_sources(nothing) == nothing.answer
