"""Loading the evaluation datasets: the gold set and XQuAD (German and English questions
over the same German paragraphs)."""

from __future__ import annotations

import json

import pytest

from eval.datasets import XQUAD_DIR, evidence_sentence, load_dataset, load_gold, load_xquad, slug, xquad_source


def test_gold_set_loads_with_all_fields():
    gold = load_gold()
    assert gold.name == "gold" and len(gold.items) >= 36
    assert len({i.id for i in gold.items}) == len(gold.items)
    for item in gold.items:
        assert item.lang in ("de", "en")
        if item.answerable:
            assert item.sources and item.answers and item.evidence
        else:
            assert not item.sources and not item.answers
    assert any(item.history for item in gold.items)


def test_gold_file_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x", "question": "Q?", "answerable": True}) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        load_gold(bad)


@pytest.mark.parametrize(
    ("title", "index", "expected"),
    [("Super_Bowl_50", 0, "xquad/super-bowl-50/0.txt"), ("Sky_(United_Kingdom)", 4, "xquad/sky-united-kingdom/4.txt")],
)
def test_xquad_source_names(title, index, expected):
    assert xquad_source(title, index) == expected
    assert slug("  ") == "untitled"


@pytest.mark.parametrize(
    ("context", "start", "expected"),
    [
        ("Erster Satz hier. Die Antwort ist 308 Punkte. Dritter Satz.", 34, "Die Antwort ist 308 Punkte."),
        ("Erster Satz hier. Zweiter.", 0, "Erster Satz hier."),
        ("Ein Satz.", -1, ""),
    ],
)
def test_evidence_sentence(context, start, expected):
    assert evidence_sentence(context, start) == expected


def test_xquad_german_and_english_share_the_paragraphs():
    de, en = load_xquad("de"), load_xquad("en")
    assert len(de.corpus) == 240 and len(de.items) == 1190 and len(en.items) == 1190
    assert de.corpus == en.corpus and de.corpus_id == en.corpus_id
    assert len({c.source for c in de.corpus}) == 240
    for q_de, q_en in zip(de.items, en.items, strict=True):
        assert q_de.sources == q_en.sources and q_de.id[3:] == q_en.id[3:]
    sources = {c.source: c.text for c in de.corpus}
    for item in de.items[:200]:
        assert item.evidence and item.evidence in sources[item.sources[0]]
        assert any(a in item.evidence for a in item.answers)


def test_xquad_subset_keeps_the_first_paragraphs():
    sub = load_xquad("en", max_paragraphs=60)
    assert len(sub.corpus) == 60
    assert {i.sources[0] for i in sub.items} == {c.source for c in sub.corpus}
    assert sub.corpus_id != load_xquad("en").corpus_id  # a different corpus gets a different store


def test_load_dataset_by_name_and_path():
    assert load_dataset("xquad-en").name == "xquad-en"
    assert load_dataset(f"{XQUAD_DIR}:en").items[0].lang == "en"
    assert load_dataset("gold").name == "gold"


def test_load_dataset_unknown_name():
    with pytest.raises(FileNotFoundError, match="Unknown dataset"):
        load_dataset("no-such-dataset")


def test_xquad_missing_folder_says_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="xquad.de.json"):
        load_xquad("de", tmp_path)


def test_withheld_protocol_splits_by_article_and_withholds_paragraphs() -> None:
    from eval.datasets import load_xquad_withheld, seeded_sample

    cal = load_xquad_withheld("de", split="calibration")
    test = load_xquad_withheld("de", split="test")
    corpus = {c.source for c in test.corpus}
    assert corpus == {c.source for c in cal.corpus}  # one store serves both halves
    assert len(corpus) == 192 and test.meta["withheld"] == 48
    withheld = set(test.meta["withheld_sources"])
    assert not withheld & corpus
    full = {i.id: i for i in load_xquad("de").items}
    for ds, split in ((cal, "calibration"), (test, "test")):
        assert {i.split for i in ds.items} == {split}
        for item in ds.items:
            source = full[item.id].sources[0]
            assert item.answerable == (source not in withheld)
            assert item.answerable == bool(item.answers)

    def articles(ds):
        return {full[i.id].sources[0].split("/")[1] for i in ds.items}

    assert not articles(cal) & articles(test)  # no article in both halves
    assert len(cal.items) + len(test.items) == 1190
    assert sum(not i.answerable for i in test.items) >= 100
    sample = seeded_sample(test.items, 300)
    assert len(sample) == 300 and sum(i.answerable for i in sample) == 200
    assert sample == seeded_sample(test.items, 300)  # seeded: the same every time
    en = load_xquad_withheld("en", split="test")
    assert [i.answerable for i in en.items] == [i.answerable for i in test.items]


def test_removed_protocol_cuts_answer_sentences_and_keeps_the_withheld_split() -> None:
    """On-topic unanswerable questions: the answer sentence is cut from an indexed paragraph."""
    from eval.datasets import REMOVED_SHARE, load_dataset, load_xquad_withheld

    plain = load_xquad_withheld("de", split="all")
    cut = load_xquad_withheld("de", split="all", removed_share=REMOVED_SHARE)
    assert load_dataset("xquad-de-removed-calibration").name == "xquad-de-removed-calibration"
    assert cut.meta["withheld_sources"] == plain.meta["withheld_sources"]
    assert {c.source for c in cut.corpus} == {c.source for c in plain.corpus}
    splits = {i.id: i.split for i in plain.items}
    by_id = {i.id: i for i in plain.items}
    texts = {c.source: c.text for c in cut.corpus}
    original = {c.source: c.text for c in plain.corpus}
    removed = [i for i in cut.items if i.reason == "removed"]
    assert len(removed) >= 100 and cut.meta["left_out_questions"] <= 10
    for item in cut.items:
        assert item.split == splits[item.id]  # the halves do not change
        if item.reason == "removed":
            before = by_id[item.id]
            source = before.sources[0]
            assert not item.answerable and len(texts[source]) < len(original[source])
            assert item.answers == () and not any(a in texts[source] for a in before.answers)
        elif item.answerable:
            assert any(a in texts[item.sources[0]] for a in item.answers)  # the fact is still there
        else:
            assert item.reason == "withheld" and not item.sources
