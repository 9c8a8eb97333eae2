"""The `rag` command line: JSON shapes, batch mode, exit codes, one-line errors.

Most tests call ``rag.cli.main`` in this process with the fake embedder; the ones about
exit codes and stderr run ``python -m rag`` as a real process.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import SAMPLE_DIR, SAMPLE_SOURCES, CountingEmbedder, assert_one_line_error, clean_env, run_rag

from index.embed import FakeEmbedder
from rag.api import Pipeline
from rag.cli import COMMANDS, Command, build_parser
from rag.runtime import OFFLINE_ENV
from rag.errors import BadInput, EmptyStore, NotFound
from rag.settings import Settings
from rag.types import Answer, Citation, Passage

PASSAGE_KEYS = {"id", "source", "title", "text", "start", "end", "score", "meta", "group", "story", "also_in"}
REPORT_KEYS = {
    "added",
    "updated",
    "unchanged",
    "removed",
    "failed",
    "metadata_only",
    "warnings",
    "chunks",
    "seconds",
    "stages",
}
QUESTION = "Wie viele Raketen mit Nuklearsprengköpfen kann das Atom-U-Boot tragen?"


def _settings(global_args: list[str]) -> Settings:
    """The settings a CLI run with these global args (--store DIR --embedder fake) used."""
    return Settings(store=Path(global_args[1]), embedder="fake")


@pytest.fixture
def store_args(tmp_path: Path) -> list[str]:
    return ["--store", str(tmp_path / "store"), "--embedder", "fake"]


@pytest.fixture
def indexed(cli, store_args: list[str]) -> list[str]:
    """Global args of a store holding the sample articles."""
    result = cli(*store_args, "index")
    assert result.code == 0, result.err
    return store_args


# ----- index
def test_index_json_report(cli, store_args: list[str]) -> None:
    result = cli(*store_args, "index", "--json")
    assert result.code == 0 and result.err == ""
    report = result.json()
    assert set(report) == REPORT_KEYS
    assert sorted(report["added"]) == SAMPLE_SOURCES
    assert report["failed"] == [] and report["chunks"] > 0
    again = cli(*store_args, "index", "--json").json()
    assert sorted(again["unchanged"]) == SAMPLE_SOURCES and again["chunks"] == 0


def test_index_human_summary_and_skipped_files(cli, store_args: list[str], tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    shutil.copytree(SAMPLE_DIR, folder)
    (folder / "bild.txt").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    (folder / "leer.md").write_text("")
    result = cli(*store_args, "index", folder)
    assert result.code == 1, result.err  # some files failed, the others were indexed
    lines = result.out.splitlines()
    assert re.fullmatch(
        r"5 added, 0 updated, 0 unchanged, 0 removed, 2 failed; \d+ chunks embedded in [\d.]+ s", lines[0]
    )
    assert sorted(lines[1:]) == ["skipped bild.txt: binary content, not text", "skipped leer.md: empty file"]


def test_index_only_unusable_files_is_bad_input(cli, store_args: list[str], tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "leer.txt").write_text("")
    result = cli(*store_args, "index", folder)
    assert result.code == BadInput.exit_code
    assert result.out.splitlines()[1:] == ["skipped leer.txt: empty file"]
    assert result.err.startswith("error: None of the files could be indexed")


def test_index_empty_folder_is_bad_input(cli, store_args: list[str], tmp_path: Path) -> None:
    (tmp_path / "nothing").mkdir()
    result = cli(*store_args, "index", tmp_path / "nothing")
    assert result.code == BadInput.exit_code and "No .txt, .md or .html files found" in result.err


def test_index_prune_flag(cli, store_args: list[str], tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    shutil.copytree(SAMPLE_DIR, folder)
    assert cli(*store_args, "index", folder).code == 0
    (folder / SAMPLE_SOURCES[0]).unlink()
    report = cli(*store_args, "index", "--prune", "--json", folder).json()
    assert report["removed"] == [SAMPLE_SOURCES[0]]
    assert [s["source"] for s in cli(*store_args, "sources", "--json").json()] == SAMPLE_SOURCES[1:]


# ----- retrieve
def test_retrieve_json_shape(cli, indexed: list[str], tmp_path: Path) -> None:
    result = cli(*indexed, "retrieve", "--json", "-k", "3", QUESTION)
    assert result.code == 0 and result.err == ""
    data = result.json()
    assert set(data) == {"question", "passages", "timings"}
    assert data["question"] == QUESTION
    assert set(data["timings"]) == {"retrieve_s"} and isinstance(data["timings"]["retrieve_s"], float)
    assert len(data["passages"]) == 3
    pipeline = Pipeline(_settings(indexed))
    for passage in data["passages"]:
        assert set(passage) == PASSAGE_KEYS
        assert pipeline.article(passage["source"]).text[passage["start"] : passage["end"]] == passage["text"]
    scores = [p["score"] for p in data["passages"]]
    assert scores == sorted(scores, reverse=True)
    assert data["passages"][0]["source"] == "004_7f32bc9d79f56e77.txt"


def test_retrieve_human_output(cli, indexed: list[str]) -> None:
    result = cli(*indexed, "retrieve", "-k", "2", QUESTION)
    assert result.code == 0
    lines = result.out.splitlines()
    assert len(lines) == 4
    assert re.fullmatch(r"1\. 004_7f32bc9d79f56e77\.txt  score 0\.\d{4}  chars \d+-\d+", lines[0])
    top = cli(*indexed, "retrieve", "--json", "-k", "1", QUESTION).json()["passages"][0]
    assert lines[0].endswith(f"chars {top['start']}-{top['end']}")
    snippet = lines[1].removeprefix("   ")
    assert snippet.endswith(" …") and len(snippet) <= 245  # long passages are cut at a word
    assert " ".join(top["text"].split()).startswith(snippet.removesuffix(" …"))
    assert lines[2].startswith("2. ")


def test_retrieve_batch_from_stdin(cli, tmp_path: Path) -> None:
    settings = _settings(["--store", str(tmp_path / "store")])
    Pipeline(settings).index()
    built: list[CountingEmbedder] = []

    def factory(s):
        built.append(CountingEmbedder(FakeEmbedder()))
        return Pipeline(s, embedder=built[-1])

    stdin = f"{QUESTION}\n\n   \n???\nWer ist Dmitri Peskow?\n"
    result = cli(
        "--store",
        tmp_path / "store",
        "--embedder",
        "fake",
        "retrieve",
        "-",
        "-k",
        "2",
        stdin=stdin,
        pipeline_factory=factory,
    )
    assert result.code == 1  # one line failed, the others worked
    rows = result.json_lines()
    assert [r["question"] for r in rows] == [QUESTION, "???", "Wer ist Dmitri Peskow?"]
    assert set(rows[0]) == {"question", "passages", "timings"} and len(rows[0]["passages"]) == 2
    assert set(rows[1]) == {"question", "error"} and "no words" in rows[1]["error"]
    assert "Peskow" in rows[2]["passages"][0]["text"]
    assert len(built) == 1 and built[0].queries == [QUESTION, "Wer ist Dmitri Peskow?"]


def test_retrieve_batch_all_good_exits_0(cli, indexed: list[str]) -> None:
    result = cli(*indexed, "retrieve", "-", stdin="Kim\nPutin\n")
    assert result.code == 0 and len(result.json_lines()) == 2


def test_retrieve_on_an_empty_store(cli, store_args: list[str]) -> None:
    assert_one_line_error(cli(*store_args, "retrieve", "Kim"), EmptyStore.exit_code, "rag index")


@pytest.mark.parametrize("question", ["", "   ", "?!"])
def test_retrieve_unusable_question(cli, indexed: list[str], question: str) -> None:
    assert_one_line_error(cli(*indexed, "retrieve", question), BadInput.exit_code, "question")


def test_retrieve_k_must_be_positive(cli, indexed: list[str]) -> None:
    result = cli(*indexed, "retrieve", "-k", "0", "Kim")
    assert result.code == 2 and "-k" in result.err


# ----- sources / remove
def test_sources_json_and_human(cli, indexed: list[str]) -> None:
    rows = cli(*indexed, "sources", "--json").json()
    assert [r["source"] for r in rows] == SAMPLE_SOURCES
    pipeline = Pipeline(_settings(indexed))
    for row in rows:
        assert set(row) == {"source", "title", "chunks", "chars", "meta"}
        article = pipeline.article(row["source"])
        assert row["title"] == article.title and row["chars"] == len(article.text)
        assert row["chunks"] == len(pipeline.store.chunk_ids(row["source"])) > 0
    human = cli(*indexed, "sources").out.splitlines()
    assert human[0].split() == ["SOURCE", "CHUNKS", "CHARS", "TITLE"]
    assert [line.split()[0] for line in human[1:]] == SAMPLE_SOURCES


def test_sources_of_an_empty_store(cli, store_args: list[str]) -> None:
    assert cli(*store_args, "sources", "--json").json() == []
    empty = cli(*store_args, "sources")
    assert empty.code == 0 and empty.out == "" and "rag index" in empty.err


def test_remove(cli, indexed: list[str]) -> None:
    gone = SAMPLE_SOURCES[2]
    result = cli(*indexed, "remove", "--json", gone)
    assert result.code == 0 and result.json() == {"removed": gone}
    assert gone not in [r["source"] for r in cli(*indexed, "sources", "--json").json()]
    assert_one_line_error(cli(*indexed, "remove", gone), NotFound.exit_code, gone)
    human = cli(*indexed, "remove", SAMPLE_SOURCES[0])
    assert human.code == 0 and human.out == f"removed {SAMPLE_SOURCES[0]}\n"


# ----- ask (wired to Pipeline.ask; answering itself is tested in rag/answer's tests)
class ScriptedPipeline:
    """Records ask() calls and answers with a fixed citation: tests the CLI's wiring only."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.calls: list[tuple[str, tuple[str, ...], str | None]] = []

    def ask(self, question: str, history=(), generator=None) -> Answer:
        if not question.strip():
            raise BadInput("The question is empty: ask something about the articles.")
        self.calls.append((question, tuple(history), generator))
        passage = Passage("p1", "a.txt", "Titel", "Kim fuhr mit dem Zug.", 0, 21, 0.5)
        citation = Citation(1, "p1", "a.txt", 0, 21, "Kim fuhr mit dem Zug.")
        return Answer(
            question=question,
            answer=f"Antwort auf {question} [1]",
            abstained=False,
            citations=(citation,),
            passages=(passage,),
            generator=generator or "scripted",
        )


@pytest.fixture
def scripted():
    made: list[ScriptedPipeline] = []

    def factory(settings):
        made.append(ScriptedPipeline(settings))
        return made[-1]

    factory.made = made
    return factory


def test_ask_turns_are_one_conversation(cli, scripted) -> None:
    result = cli(
        "--embedder",
        "fake",
        "ask",
        "--json",
        "--generator",
        "extractive",
        "Wer?",
        "Wann?",
        "Wo?",
        pipeline_factory=scripted,
    )
    assert result.code == 0, result.err
    assert scripted.made[0].calls == [
        ("Wer?", (), "extractive"),
        ("Wann?", ("Wer?",), "extractive"),
        ("Wo?", ("Wer?", "Wann?"), "extractive"),
    ]
    rows = result.json_lines()
    assert [r["question"] for r in rows] == ["Wer?", "Wann?", "Wo?"]
    assert set(rows[0]) == set(Answer("q", "a", False).to_json())
    assert rows[0]["citations"][0]["quote"] == "Kim fuhr mit dem Zug."


def test_ask_human_output(cli, scripted) -> None:
    result = cli("ask", "Wer fuhr Zug?", pipeline_factory=scripted)
    assert result.code == 0
    assert result.out.splitlines()[:2] == [
        "Antwort auf Wer fuhr Zug? [1]",
        "  [1] a.txt, chars 0-21: Kim fuhr mit dem Zug.",
    ]
    assert scripted.made[0].calls == [("Wer fuhr Zug?", (), None)]


def test_ask_from_stdin(cli, scripted) -> None:
    lines = ["Wer ist Kim?", "", '["Wer ist Kim?", "Wohin fährt er?"]', '["a", 2]', '{"q": 1}', "[nicht json] Was nun?"]
    result = cli("ask", "-", stdin="\n".join(lines), pipeline_factory=scripted)
    assert result.code == 1  # one bad line, the rest answered
    rows = result.json_lines()
    assert [r["question"] for r in rows] == [
        "Wer ist Kim?",
        "Wohin fährt er?",
        '["a", 2]',
        '{"q": 1}',
        "[nicht json] Was nun?",
    ]
    assert set(rows[2]) == {"question", "error"}
    assert scripted.made[0].calls == [
        ("Wer ist Kim?", (), None),
        ("Wohin fährt er?", ("Wer ist Kim?",), None),
        ('{"q": 1}', (), None),
        ("[nicht json] Was nun?", (), None),
    ]


def test_ask_rejects_json_arrays_that_are_not_turns(cli, scripted) -> None:
    rows = cli("ask", "-", stdin='[]\n["a", 2]\n', pipeline_factory=scripted).json_lines()
    assert all("array of strings" in r["error"] for r in rows)


def test_ask_stdin_dash_must_be_alone(cli, scripted) -> None:
    assert_one_line_error(cli("ask", "Wer?", "-", pipeline_factory=scripted), BadInput.exit_code, "'-'")


# ----- errors, settings, start-up
def test_keyboard_interrupt_exits_130(cli) -> None:
    def interrupted(settings):
        raise KeyboardInterrupt

    result = cli("sources", pipeline_factory=interrupted)
    assert result.code == 130 and result.err == "interrupted\n" and result.out == ""


def test_offline_environment_defaults(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in OFFLINE_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # an explicit choice is respected

    seen = {}

    def factory(settings):
        seen.update({k: os.environ.get(k) for k in OFFLINE_ENV})
        return ScriptedPipeline(settings)

    cli("ask", "Wer?", pipeline_factory=factory)
    assert seen == {**OFFLINE_ENV, "HF_HUB_OFFLINE": "0"}


def test_settings_file_env_and_flags(cli, indexed: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "my.toml"
    toml.write_text('top_k = 2\nretrieval = "keyword"\n')
    rows = cli(*indexed, "--settings", toml, "retrieve", "--json", QUESTION).json()["passages"]
    assert len(rows) == 2  # top_k from the file
    assert "RAG_SETTINGS_FILE" not in os.environ  # the test helper restored the environment

    monkeypatch.setenv("RAG_TOP_K", "3")  # the environment beats the file
    assert len(cli(*indexed, "--settings", toml, "retrieve", "--json", QUESTION).json()["passages"]) == 3

    (tmp_path / "rag.toml").write_text("top_k = 1\n")  # ./rag.toml is read when no file is named
    monkeypatch.delenv("RAG_TOP_K")
    assert len(cli(*indexed, "retrieve", "--json", QUESTION).json()["passages"]) == 1


def test_store_from_environment(cli, indexed: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_STORE", indexed[1])
    monkeypatch.setenv("RAG_EMBEDDER", "fake")
    assert [r["source"] for r in cli("sources", "--json").json()] == SAMPLE_SOURCES


@pytest.mark.parametrize(
    ("env", "argv", "needle"),
    [
        ({"RAG_TOP_K": "0"}, ["sources"], "top_k"),
        ({"RAG_CHUNK_SIZE": "64", "RAG_CHUNK_OVERLAP": "64"}, ["sources"], "chunk_overlap"),
        ({}, ["--settings", "missing.toml", "sources"], "missing.toml"),
        ({"RAG_SETTINGS_FILE": "nowhere.toml"}, ["sources"], "nowhere.toml"),
    ],
    ids=["out-of-range", "overlap-not-below-size", "missing-settings-flag", "missing-settings-env"],
)
def test_bad_settings_are_one_line(
    cli, monkeypatch: pytest.MonkeyPatch, env: dict, argv: list[str], needle: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert_one_line_error(cli(*argv), BadInput.exit_code, needle)


def test_malformed_settings_file(cli, tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("top_k = = 3\n")
    assert_one_line_error(cli("--settings", tmp_path / "bad.toml", "sources"), BadInput.exit_code, "bad.toml")
    (tmp_path / "unknown.toml").write_text("colour = 'blue'\n")
    assert_one_line_error(cli("--settings", tmp_path / "unknown.toml", "sources"), BadInput.exit_code, "colour")


def test_commands_are_registered_in_one_place() -> None:
    """Adding `chat`, `serve`, `eval` or `bench` is one Command in COMMANDS."""
    assert {"index", "retrieve", "ask", "sources", "remove"} <= set(COMMANDS)
    added = {"hello": Command("say hello", lambda p: p.add_argument("name"), lambda args, ctx: 0)}
    COMMANDS.update(added)
    try:
        assert build_parser().parse_args(["hello", "Welt"]).name == "Welt"
    finally:
        del COMMANDS["hello"]


# ----- as a real process: exit codes and stderr
def test_python_m_rag_help_lists_exit_codes(tmp_path: Path) -> None:
    result = run_rag("--help", cwd=tmp_path)
    assert result.code == 0
    assert "exit codes:" in result.out
    for code in ("0", "1", "2", "3", "4", "5", "6", "130"):
        assert re.search(rf"^  {code} +\S", result.out, re.M), code
    for name in COMMANDS:
        assert name in result.out


def test_missing_path_exit_code_and_one_line(tmp_path: Path) -> None:
    result = run_rag("--store", tmp_path / "store", "--embedder", "fake", "index", tmp_path / "nope", cwd=tmp_path)
    assert_one_line_error(result, BadInput.exit_code, "No such file or folder", str(tmp_path / "nope"))


def test_empty_question_exit_code_and_one_line(tmp_path: Path) -> None:
    result = run_rag("--store", tmp_path / "store", "--embedder", "fake", "retrieve", "  ", cwd=tmp_path)
    assert_one_line_error(result, BadInput.exit_code, "question is empty")


def test_usage_error_exits_2(tmp_path: Path) -> None:
    result = run_rag("--embedder", "nonsense", "sources", cwd=tmp_path, env=clean_env())
    assert result.code == 2 and "Traceback" not in result.err and "invalid choice" in result.err


def test_ask_end_to_end_with_the_extractive_generator(cli, indexed: list[str]) -> None:
    """The real Pipeline.ask behind the CLI (no LLM): each turn's answer cites verbatim spans."""
    pytest.importorskip("rag.answer", reason="rag/answer is not importable yet")
    result = cli(*indexed, "ask", "--json", "--generator", "extractive", QUESTION, "Wer hat das verkündet?")
    assert result.code == 0, result.err
    rows = result.json_lines()
    assert [r["question"] for r in rows] == [QUESTION, "Wer hat das verkündet?"]
    pipeline = Pipeline(_settings(indexed))
    for row in rows:
        assert row["generator"] == "extractive"
        for citation in row["citations"]:
            assert pipeline.article(citation["source"]).text[citation["start"] : citation["end"]] == citation["quote"]
    assert rows[0]["citations"], "a question the articles answer gets citations"


def test_ctrl_c_handled_while_closing_is_still_an_interrupt() -> None:
    """A Ctrl-C that Python handles only during close() (another thread held the interpreter when it
    came) must not turn into the command's exit 0: close finishes, and the interrupt is reported."""
    import types

    from rag.cli import _run_and_close

    calls = []

    class Ctx:
        def close(self) -> None:
            calls.append("close")
            if len(calls) == 1:
                raise KeyboardInterrupt

    command = types.SimpleNamespace(run=lambda args, ctx: 0)
    with pytest.raises(KeyboardInterrupt):
        _run_and_close(command, None, Ctx())
    assert calls == ["close", "close"]
