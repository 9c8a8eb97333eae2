"""The chat's handlers without a browser: streaming, history, errors as chat messages, filters
(over the news fixture corpus), uploads, launching (login, sample articles into an empty store)
and the ``rag chat`` command."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from rag.answer.prompts import NO_ANSWER
from rag.api import Pipeline
from rag.errors import EmptyStore, ModelUnavailable, StoreUnavailable
from rag.settings import Settings
from rag.types import Answer, Passage
from tests.conftest import PYTHON, SAMPLE_SOURCES, clean_env, free_port
from tests.fakes import ScriptedGenerator
from tests.news_corpus import EXPECTED, NEWS_DIR

app = pytest.importorskip("ui.app")

U_BOOT = "Wie viele Raketen kann das U-Boot tragen?"
SUPPORTED = "Das Gefährt könne bis zu zehn Raketen mit Nuklearsprengköpfen tragen und abfeuern [1]."


def run_turn(pipeline, question: str, messages=None, state=None, generator=None, top_k: int = 5):
    """All yields of one chat turn, and the last one."""
    steps = list(app.chat_turn(pipeline, question, messages or [], state or [], generator, top_k, False))
    return steps, steps[-1]


def last_message(step) -> str:
    return step[1][-1]["content"]


@pytest.fixture
def samples(settings: Settings) -> Pipeline:
    pipeline = Pipeline(settings.with_(generator="extractive"))
    pipeline.index()
    return pipeline


# ----- streaming and the final answer
def test_stream_shows_drafts_then_the_checked_answer(settings: Settings) -> None:
    # The draft holds a sentence the grounding check drops: the final message must not.
    generator = ScriptedGenerator(f"{SUPPORTED} Der Mond ist aus grünem Käse gemacht [1].")
    pipeline = Pipeline(settings, generator=generator)
    pipeline.index()
    steps, last = run_turn(pipeline, U_BOOT)
    first = steps[0]
    assert first[0] == "" and first[1][0]["role"] == "user" and "rag-pending" in last_message(first)
    drafts = [last_message(s) for s in steps[1:-1]]
    assert len(drafts) > 5 and all("rag-draft" in d for d in drafts)
    assert any("Käse" in d for d in drafts)
    final = last_message(last)
    assert 'class="rag-answer"' in final and "Käse" not in final
    assert '<a class="cite" href="#src-1-' in final
    answer = last[2][-1]["answer"]
    assert isinstance(answer, Answer) and not answer.abstained
    assert 'id="turn-1"' in last[3] and "<mark>" in last[3]


def test_follow_up_gets_earlier_turns_as_history_and_the_chosen_settings() -> None:
    class Recorder:
        settings = Settings(store=Path("/nonexistent"), embedder="fake")

        def __init__(self) -> None:
            self.calls = []

        def ask_stream(self, question, history, generator=None, *, top_k=None):
            self.calls.append((question, list(history), generator, top_k))
            if question == "kaputt":
                raise EmptyStore()
            yield "Teil "
            p = Passage(id="p", source="a.txt", title="A", text="Satz.", start=0, end=5, score=1.0)
            yield Answer(question=question, answer="Satz [1].", abstained=False, passages=(p,))

    pipeline = Recorder()
    _, one = run_turn(pipeline, "erste Frage", generator="extractive", top_k=3)
    _, two = run_turn(pipeline, "kaputt", one[1], one[2], "local", 7)
    _, three = run_turn(pipeline, "  dritte Frage ", two[1], two[2], "openai", 2)
    assert pipeline.calls == [
        ("erste Frage", [], "extractive", 3),
        ("kaputt", ["erste Frage"], "local", 7),
        ("dritte Frage", ["erste Frage"], "openai", 2),
    ]  # the failed turn is no context
    assert len(three[1]) == 6 and len(three[2]) == 3
    assert 'id="turn-3"' in three[3] and 'id="turn-2"' not in three[3]


def test_empty_question_changes_nothing(samples: Pipeline) -> None:
    steps, _ = run_turn(samples, "   ")
    assert len(steps) == 1 and all(v == app.gr.skip() for v in steps[0])


def test_abstention_is_rendered_as_a_notice(samples: Pipeline) -> None:
    _, last = run_turn(samples, "Wie ist das Wetter auf dem Mars?")
    assert "rag-abstained" in last_message(last) and NO_ANSWER["de"] in last_message(last)
    assert last[2][-1]["answer"].abstained


# ----- filters: the Filters accordion's values go into the search
BRIDGE_Q = "Wie lang ist die Umleitung wegen der gesperrten Havelbrücke in Rathenow?"


@pytest.fixture
def news(settings: Settings) -> Pipeline:
    """The news corpus, with small chunks and as few candidates per retriever as k: filtering
    the retrieved passages afterwards would leave fewer than k."""
    pipeline = Pipeline(settings.with_(generator="extractive", chunk_size=40, chunk_overlap=0, candidates=5))
    pipeline.index([NEWS_DIR])
    return pipeline


def filtered_turn(pipeline: Pipeline, question: str, outlets=None, since: str = "", until: str = ""):
    return list(app.chat_turn(pipeline, question, [], [], None, 5, False, outlets, since, until))[-1]


def test_filters_reach_the_search_and_keep_k_full(news: Pipeline) -> None:
    assert sum(p.meta.outlet == "Radio Nordost" for p in news.retrieve(BRIDGE_Q, 5)) < 5  # selective
    last = filtered_turn(news, BRIDGE_Q, ["Radio Nordost"])
    answer = last[2][-1]["answer"]
    assert len(answer.passages) == 5 and {p.meta.outlet for p in answer.passages} == {"Radio Nordost"}
    assert {c.source for c in answer.citations} <= {p.source for p in answer.passages}
    assert last[3].count('class="src-outlet">Radio Nordost<') == 5  # every source shows its outlet
    dated = filtered_turn(news, BRIDGE_Q, [], " 2023-09 ", "2023-09")[2][-1]["answer"]
    assert dated.passages and all(p.meta.date.startswith("2023-09") for p in dated.passages)


def test_a_filter_that_nothing_passes_and_a_bad_date_are_messages(news: Pipeline) -> None:
    none = filtered_turn(news, BRIDGE_Q, ["Radio Nordost"], "2030")
    assert "rag-abstained" in last_message(none) and "with filters set, no article may pass them" in last_message(none)
    assert none[2][-1]["answer"].passages == ()
    bad = filtered_turn(news, BRIDGE_Q, [], "gestern")
    assert "rag-error" in last_message(bad)
    assert "Cannot read the since date &#x27;gestern&#x27;: write it as 2023-09-12, 2023-09 or 2023." in last_message(
        bad
    )
    assert bad[2][-1]["answer"] is None  # a failed turn is no context for the next


def test_outlet_choices_come_from_the_articles(news: Pipeline) -> None:
    table, remove, outlets, shown = app.article_views(news, ["Radio Nordost", "Gone Gazette"])
    assert shown["choices"] == outlets["choices"] and shown["value"] == []
    assert "13 articles indexed" in table and len(remove["choices"]) == 13
    assert outlets["choices"] == sorted({e[1] for e in EXPECTED.values() if e[1]}, key=str.casefold)
    assert outlets["value"] == ["Radio Nordost"]  # an outlet no article has any more is dropped
    assert app.list_articles(news)[0] == table


def test_applied_line_shows_the_filters() -> None:
    assert app.applied_html("extractive", 5, False).endswith("scores hidden</div>")
    line = app.applied_html("extractive", 5, False, ["Radio Nordost", "A&B"], "2023-09", " ")
    assert line.endswith("scores hidden; only Radio Nordost, A&amp;B, since 2023-09</div>")


# ----- errors: a clear message in the chat, never a traceback
class Failing:
    """A pipeline whose answer stream fails after its first piece."""

    settings = Settings(store=Path("/nonexistent"), embedder="fake")

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def ask_stream(self, question, history, generator=None, *, top_k=None):
        yield "Ein Anfang"
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "needle"),
    [
        (
            StoreUnavailable(
                "The Chroma store at http://127.0.0.1:9 failed: Connection refused. Check that the "
                "Chroma server is running and reachable, then try again."
            ),
            "Chroma server is running",
        ),
        (ModelUnavailable("llama-cpp-python is not installed: run `make setup`."), "llama-cpp-python is not installed"),
        (RuntimeError("boom <b>"), "Something went wrong while answering (RuntimeError: boom &lt;b&gt;)"),
    ],
)
def test_errors_become_one_message(exc: Exception, needle: str, caplog: pytest.LogCaptureFixture) -> None:
    _, last = run_turn(Failing(exc), "Frage?")
    message = last_message(last)
    assert "rag-error" in message and needle in message
    assert "Traceback" not in message and "Ein Anfang" not in message
    assert last[2][-1]["answer"] is None
    if isinstance(exc, RuntimeError):
        assert "Traceback" in caplog.text or caplog.records[-1].exc_info  # the details go to the server log


def test_empty_store_is_a_message(settings: Settings) -> None:
    _, last = run_turn(Pipeline(settings.with_(generator="extractive")), U_BOOT)
    assert "rag-error" in last_message(last) and "No articles are indexed yet" in last_message(last)


def test_unreachable_llm_server_is_a_message(samples: Pipeline) -> None:
    pipeline = Pipeline(samples.settings.with_(openai_base_url=f"http://127.0.0.1:{free_port()}/v1", request_timeout=3))
    _, last = run_turn(pipeline, U_BOOT, generator="openai")
    assert "rag-error" in last_message(last) and "Cannot reach the LLM server" in last_message(last)


# ----- uploads and removal
def upload(tmp_path: Path, name: str, data: bytes) -> Path:
    folder = tmp_path / "gradio-upload"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


ARTICLE = "Neue Stadtbibliothek eröffnet\n\nDer Neubau bietet Platz für 120.000 Bücher und 80 Arbeitsplätze.\n".encode()


def test_upload_indexes_answers_and_deletes_the_temporary_file(samples: Pipeline, tmp_path: Path) -> None:
    path = upload(tmp_path, "bibliothek.txt", ARTICLE)
    status = app.upload_files(samples, [str(path)])
    assert "status-ok" in status and "bibliothek.txt: indexed" in status
    assert not path.exists()
    answer = samples.ask("Für wie viele Bücher bietet der Neubau Platz?")
    assert "120.000" in answer.answer and answer.citations[0].source == "bibliothek.txt"


@pytest.mark.parametrize(
    ("name", "data", "limit_mb", "needle"),
    [
        ("notes.pdf", b"%PDF-1.4", 10, "Unsupported file type .pdf"),
        ("noext", b"text", 10, "Unsupported file type (none)"),
        ("big.txt", b"x" * 3000, 0.001, "larger than the upload limit"),
        ("leer.txt", b"", 10, "leer.txt"),
    ],
)
def test_upload_refusals_are_messages(
    settings: Settings, tmp_path: Path, name: str, data: bytes, limit_mb: float, needle: str
) -> None:
    pipeline = Pipeline(settings.with_(max_upload_mb=limit_mb))
    path = upload(tmp_path, name, data)
    status = app.upload_files(pipeline, [str(path)])
    assert "status-error" in status and needle in status, status
    assert not path.exists()
    assert pipeline.sources() == []


def test_upload_name_cannot_leave_the_store(samples: Pipeline, tmp_path: Path) -> None:
    # A file name with backslash "path" parts is legal on Linux; it is stored under its base name only.
    path = upload(tmp_path, "..\\..\\evil.txt", ARTICLE)
    status = app.upload_files(samples, [str(path)])
    assert "status-ok" in status, status
    assert "evil.txt" in {a.source for a in samples.sources()}
    assert not path.exists()
    assert not any(p.name == "evil.txt" for p in tmp_path.rglob("*")) and not (tmp_path.parent / "evil.txt").exists()


def test_remove_article(samples: Pipeline) -> None:
    assert "Choose an article" in app.remove_article(samples, None)
    assert "Removed 000_adb08db0fa087bf0.txt." in app.remove_article(samples, "000_adb08db0fa087bf0.txt")
    assert "000_adb08db0fa087bf0.txt" not in {a.source for a in samples.sources()}
    again = app.remove_article(samples, "000_adb08db0fa087bf0.txt")  # a second tab removed it already
    assert "status-error" in again and "No indexed article is called" in again
    table, dropdown = app.list_articles(samples)
    assert "4 articles indexed" in table and len(dropdown["choices"]) == 4


# ----- launching
def test_launch_indexes_samples_into_an_empty_store_and_asks_for_a_login(settings: Settings) -> None:
    settings = settings.with_(port=free_port(), auth_user="ada", auth_password="lovelace", generator="extractive")
    pipeline = Pipeline(settings)
    assert pipeline.sources() == []
    server = app.launch(pipeline, settings, block=False)
    try:
        assert sorted(a.source for a in pipeline.sources()) == SAMPLE_SOURCES
        url = f"http://127.0.0.1:{settings.port}"
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/config").status_code == 401
            assert client.post("/login", data={"username": "ada", "password": "wrong"}).status_code == 400
            assert client.post("/login", data={"username": "ada", "password": "lovelace"}).status_code == 200
            config = client.get("/config")
            assert config.status_code == 200 and config.json()["analytics_enabled"] is False
    finally:
        server.close()


def test_build_app_does_not_touch_the_pipeline_beyond_settings() -> None:
    class Untouchable:
        settings = Settings(store=Path("/nonexistent"), embedder="fake", generator="openai", top_k=9)

    blocks = app.build_app(Untouchable())
    config = blocks.get_config_file()
    values = {c["props"].get("elem_id"): c["props"].get("value") for c in config["components"]}
    assert values["rag-generator"] == "openai" and values["rag-top-k"] == 9
    assert values["rag-outlets"] == [] and not values["rag-since"] and not values["rag-until"]  # outlets: on load


# ----- rag chat
def test_chat_command_refuses_a_taken_port(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_GENERATOR", "extractive")  # launch loads the generator: keep the LLM out of this
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("--store", tmp_path / "store", "--embedder", "fake", "chat", "--port", port)
    assert result.code == 2 and "Traceback" not in result.err
    assert result.err.splitlines()[-1].startswith(f"error: Cannot start the chat on 127.0.0.1:{port}"), result.err


# Runs `rag chat` as a child process, waits for its "Chat running" line, fetches the page and the
# app config, stops it and prints what it saw. Inside a network namespace when permitted.
CHAT_PROBE = """
import subprocess, sys, httpx
cmd, port = sys.argv[1:-1], sys.argv[-1]
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
lines = []
for line in proc.stdout:
    lines.append(line)
    if "Chat running on" in line:
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=30)
        config = httpx.get(f"http://127.0.0.1:{port}/config", timeout=30).json()
        print(f"PROBE page={page.status_code} analytics={config['analytics_enabled']}")
        break
proc.terminate()
print("".join(lines) + proc.communicate(timeout=30)[0])
"""


@pytest.mark.slow
def test_chat_command_serves_the_page_offline(tmp_path: Path) -> None:
    """`rag chat` (the README's run command) on an empty store: samples indexed, page served, no network."""
    port = str(free_port())
    chat = [PYTHON, "-m", "rag", "--store", str(tmp_path / "store"), "--embedder", "fake", "chat", "--port", port]
    probe = [PYTHON, "-c", CHAT_PROBE, *chat, port]
    if _can_unshare():  # only loopback: anything reaching for the internet fails at once
        probe = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *probe]
    env = clean_env(RAG_GENERATOR="extractive", RAG_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run(probe, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "PROBE page=200 analytics=False" in output, output
    assert "indexing the sample articles" in output and f"Chat running on http://127.0.0.1:{port}" in output
    assert "Traceback" not in output


def _can_unshare() -> bool:
    """A network namespace needs unshare, ip and root (see STACK-NOTES "Proving offline")."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    try:
        return (
            subprocess.run(
                ["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, timeout=30
            ).returncode
            == 0
        )
    except OSError:
        return False
