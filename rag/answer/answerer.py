"""Question -> grounded Answer: rewrite, retrieve, select evidence, read, decide, check.

Answering is a chain of measured decisions; the model reads and chooses more than it writes:
1. a follow-up is rewritten into a standalone question (by the LLM when there is one,
   validated; otherwise, and when the rewrite loses the conversation's subject, retrieval
   runs over both turns);
2. evidence selection is sentence retrieval: every sentence of the retrieved passages is
   ranked by dense similarity (plus calibrated word overlap and passage rank), and the
   reader sees the best ``reader_sentences`` of them, numbered;
3. a reader with logits (the local LLM) picks one numbered sentence or [0] "none" from its
   first-token distribution (one prompt evaluation); the extractive reader takes the best
   ranked one;
4. whether to answer is decided by :mod:`rag.answer.decision` from the sentence and
   passage similarities and the reader's P(none), calibrated on public data;
5. the answer is the chosen sentence, verbatim, cited; for an English question over German
   articles an LLM also writes it in English, and that translation is kept only when the
   grounding check supports it. A writer without logits (an OpenAI-compatible server)
   drafts from the top sentences; its sentences are checked, re-cited or dropped, and when
   none survives but the decision says the evidence answers, the chosen sentence is the
   answer: an answer never holds less than the extractive one from the same evidence.
Every citation resolves to a verbatim span of the article (``quote == text[start:end]``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.answer.citations import Claim, parse_answer, render_claims, valid_cites
from rag.answer.conflicts import find_conflict
from rag.answer.dates import absolute_days, article_day
from rag.answer.decision import Answerability, Decision, Signals
from rag.answer.evidence import (
    DEFAULT_RANGE,
    SIMILARITY_RANGE,
    Evidence,
    Sentence,
    VectorCache,
    asks_for,
    type_match,
)
from rag.answer.generators import ExtractiveChoice, GenerationRequest, Generator
from rag.answer.prompts import (
    DISAGREE,
    EXAMPLE,
    NO_ANSWER,
    NO_ANSWER_PATTERNS,
    PASSAGE,
    PICK_EXAMPLES,
    PICK_LINE,
    PICK_PREFIX,
    PICK_SYSTEM,
    PICK_USER,
    REWRITE_SYSTEM,
    REWRITE_USER,
    SYSTEM,
    USER,
    VERIFY_OPTIONS,
    VERIFY_USER,
    render,
)
from rag.lang import detect_language
from rag.settings import Settings
from rag.types import Answer, Citation, Passage

if TYPE_CHECKING:
    from index.embed import Kind

Retrieve = Callable[[str, int], tuple[list[Passage], float]]
Embed = Callable[[list[str], "Kind"], np.ndarray]


@dataclass(frozen=True)
class Reading:
    """One question read, before the decision (``Answerer.read``)."""

    question: str
    standalone: str
    language: str
    cross: bool  # an English question over German articles
    passages: list[Passage]
    evidence: Evidence
    relevance: np.ndarray
    candidates: list[int]  # sentence indices the reader was shown, best first
    pick: int  # index into candidates
    kind: str  # "llm" (a reader with logits) or "extractive"
    signals: Signals | None  # None: no sentence to read
    timings: dict

    @property
    def chosen(self) -> Sentence | None:
        return self.evidence.sentences[self.candidates[self.pick]] if self.candidates else None


class Answerer:
    """Takes what it uses: a retrieve function, the embedder's embed, the keyword idf, a
    generator, the settings, and the calibrated answerability models."""

    def __init__(
        self,
        retrieve: Retrieve,
        embed: Embed,
        idf: Callable[[str], float],
        generator: Generator,
        settings: Settings,
        answerability: Answerability | None = None,
        vectors: VectorCache | None = None,
    ) -> None:
        self._retrieve = retrieve
        self._embed = embed
        self._idf = idf
        self.generator = generator
        self.settings = settings
        self._answerability = answerability or Answerability.load()
        self._rank = self._answerability.rank_weights(settings.embedder)
        # Sentence vectors, shared by every answerer of one pipeline (the warm-up's included):
        # a per-answerer cache made the first burst after start-up embed every sentence again.
        self._vectors = vectors if vectors is not None else VectorCache()

    # ----- public
    def read(self, question: str, history: Sequence[str] = ()) -> Reading:
        """Everything before the decision: rewrite, retrieve, rank the sentences, and let the
        reader pick one (with its P(none) and, optionally, its yes/no check of the pick)."""
        language = detect_language(question)
        standalone = self.rewrite(question, history, language) if history else question
        cross = language != "de"  # the articles are German; an English question needs cross-lingual matching
        passages, evidence, relevance, order, retrieve_s = self.select(standalone, cross)
        timings = {"retrieve_s": retrieve_s}
        reading = Reading(
            question, standalone, language, cross, passages, evidence, relevance, [], 0, "extractive", None, timings
        )
        if not evidence.sentences:
            return reading
        candidates = order[: self.settings.reader_sentences]
        signals = _signals(
            evidence,
            standalone,
            passages,
            float(evidence.lexical_scores(standalone).max()),
            SIMILARITY_RANGE.get(self.settings.embedder, DEFAULT_RANGE)[1],
        )
        pick, kind = 0, "extractive"
        choose = getattr(self.generator, "choose", None)
        if choose is not None:
            started = time.perf_counter()
            messages = pick_messages(language, [evidence.sentences[i].text for i in candidates], standalone)
            probs = choose(messages, PICK_PREFIX, [str(n) for n in range(len(candidates) + 1)])
            timings["read_s"] = time.perf_counter() - started
            pick, kind = int(np.argmax(probs[1:])), "llm"
            signals = replace(signals, llm_none=probs[0], llm_pick=max(probs[1:]))
            if self.settings.reader_verify and self._answerability.uses(
                "llm_verify", kind, language, self.settings.embedder
            ):
                started = time.perf_counter()
                text = evidence.sentences[candidates[pick]].text
                check = verify_messages(messages, language, pick + 1, text, standalone)
                signals = replace(signals, llm_verify=choose(check, "", VERIFY_OPTIONS[language])[0])
                timings["verify_s"] = time.perf_counter() - started
        signals = replace(signals, type_match=type_match(standalone, evidence.sentences[candidates[pick]].text))
        return replace(reading, candidates=candidates, pick=pick, kind=kind, signals=signals)

    def stream(self, question: str, history: list[str]) -> Iterator[str | Answer]:
        t0 = time.perf_counter()
        r = self.read(question, history)
        language, standalone, cross, passages, evidence = r.language, r.standalone, r.cross, r.passages, r.evidence
        relevance, candidates, pick, signals, timings = r.relevance, r.candidates, r.pick, r.signals, r.timings
        base: dict[str, Any] = dict(
            question=question,
            standalone_question=standalone,
            language=language,
            generator=self.generator.name,
            passages=tuple(passages),
        )
        if signals is None:
            yield from self._abstain_stream(base, language, timings, t0, None)
            return
        choose = getattr(self.generator, "choose", None)
        decision = self._answerability.decide(signals, r.kind, language, self.settings.embedder)
        if not decision.answer:
            yield from self._abstain_stream(base, language, timings, t0, decision, signals)
            return
        chosen = evidence.sentences[candidates[pick]]
        first: float | None = None
        if not self.generator.is_llm or (choose is not None and not cross):
            text = _cite(self._dated(chosen, passages), chosen.passage + 1)  # the reader's choice, verbatim
            first = time.perf_counter()
            yield text
            answer = self._quote_answer(chosen, passages)
        else:
            draft: list[str] = []
            for piece in self._write(standalone, language, evidence, relevance, chosen, candidates, pick):
                if first is None:
                    first = time.perf_counter()
                draft.append(piece)
                yield piece
            written = "".join(draft)
            if choose is not None:  # a translation of the chosen sentence: cite it
                written = _cite(written.strip(), chosen.passage + 1) if written.strip() else ""
            answer = self.check(written, evidence, language, cross, passages)
            said_none = bool(NO_ANSWER_PATTERNS.search(written[:200])) or not written.strip()
            if answer["abstained"] and not said_none:
                # The check dropped what was written, but the decision says the evidence answers:
                # fall back to the evidence, not to silence. (A writer that itself says the
                # passages hold nothing is believed: it is the only LLM signal it gives.)
                answer = self._quote_answer(chosen, passages)
        if not answer["abstained"]:
            # Only on the value the question asks for: other numbers in the sentence are context
            # (two Wikipedia campuses of 358 and 209 acres restate each other closely, and
            # "Wo liegt das Stadion?" asks for neither).
            if asks_for(standalone) is not None:
                answer, extra = self._disagreement(answer, evidence, candidates[pick], candidates, passages, language)
                if extra:
                    yield extra
        answer = {**answer, "confidence": decision.probability, "signals": signals.to_json()}
        yield self._finish(Answer(timings=timings, **base, **answer), t0, first)

    def sentence_evidence(self, passages: list[Passage]) -> Evidence:
        """Evidence over ``passages`` that shares this answerer's sentence vectors (the pipeline's warm-up
        embeds sentences through it)."""
        return Evidence(passages, self._embed, self._idf, cache=self._vectors)

    def select(self, question: str, cross: bool) -> tuple[list[Passage], Evidence, np.ndarray, list[int], float]:
        """Evidence selection as sentence retrieval: the passages, their sentences, each
        sentence's relevance, and the sentence indices best first (eval measures this too)."""
        passages, retrieve_s = self._retrieve(question, self.settings.top_k)
        evidence = Evidence(
            passages, self._embed, self._idf, SIMILARITY_RANGE.get(self.settings.embedder, DEFAULT_RANGE), self._vectors
        )
        relevance = evidence.relevance(question, cross, self._rank) if evidence.sentences else np.zeros(0)
        order = [int(i) for i in np.argsort(-relevance, kind="stable")]
        # A question in the article ("Was steckt dahinter?") states nothing: it goes last.
        order = sorted(order, key=lambda i: evidence.sentences[i].text.rstrip().endswith("?"))
        return passages, evidence, relevance, order, retrieve_s

    def _abstain_stream(
        self,
        base: dict,
        language: str,
        timings: dict,
        t0: float,
        decision: Decision | None,
        signals: Signals | None = None,
    ) -> Iterator[str | Answer]:
        text = NO_ANSWER[language]
        yield text
        extra: dict[str, Any] = {
            "confidence": decision.probability if decision else 0.0,
            "signals": signals.to_json() if signals else {},
        }
        yield self._finish(Answer(answer=text, abstained=True, timings=timings, **base, **extra), t0, t0)

    def _quote_answer(self, chosen: Sentence, passages: Sequence[Passage]) -> dict:
        p = passages[chosen.passage]
        quote = p.text[chosen.start - p.start : chosen.end - p.start]
        citation = Citation(
            n=chosen.passage + 1, passage_id=p.id, source=p.source, start=chosen.start, end=chosen.end, quote=quote
        )
        return {
            "answer": _cite(self._dated(chosen, passages), chosen.passage + 1),
            "abstained": False,
            "citations": (citation, *_copies(citation, p)),
        }

    def _disagreement(
        self,
        answer: dict,
        evidence: Evidence,
        chosen: int,
        candidates: list[int],
        passages: Sequence[Passage],
        language: str,
    ) -> tuple[dict, str]:
        """When other sources state the chosen fact with another number, the answer says so
        and cites each side's sources (:mod:`rag.answer.conflicts`): "… unterschiedliche
        Angaben: 4,8 Millionen [1], 4,5 Millionen [2][3]." Returns the answer and the added text."""
        paraphrase = SIMILARITY_RANGE.get(self.settings.embedder, DEFAULT_RANGE)[1]
        found = find_conflict(evidence, chosen, candidates, passages, paraphrase=paraphrase)
        if found is None:
            return answer, ""
        citations = list(answer["citations"])
        cited = {(c.passage_id, c.start, c.end) for c in citations}
        sides = []
        for number, sentences in ((found.ours, found.our_sentences), (found.theirs, found.their_sentences)):
            ns = []
            for i in sentences:
                sentence = evidence.sentences[i]
                for c in self._quote_answer(sentence, passages)["citations"]:
                    if (c.passage_id, c.start, c.end) not in cited:
                        citations.append(c)
                        cited.add((c.passage_id, c.start, c.end))
                if sentence.passage + 1 not in ns:
                    ns.append(sentence.passage + 1)
            sides.append((number, ns))
        listed = ", ".join(f"{number} {''.join(f'[{n}]' for n in ns)}" for number, ns in sides)
        extra = " " + render(DISAGREE[language], sides=listed)
        disagreement = {
            "ours": found.ours,
            "theirs": found.theirs,
            "n": [sides[0][1][0], sides[1][1][0]],
            "sides": [{"value": number, "n": ns} for number, ns in sides],
        }
        return {
            **answer,
            "answer": answer["answer"] + extra,
            "citations": tuple(citations),
            "disagreement": disagreement,
        }, extra

    @staticmethod
    def _dated(chosen: Sentence, passages: Sequence[Passage]) -> str:
        """The sentence with absolute dates beside the relative days its article's date makes
        certain ("gestern (12. September 2023)"); the citation's quote stays verbatim."""
        meta = passages[chosen.passage].meta
        return absolute_days(chosen.text, article_day(meta.published, meta.updated), detect_language(chosen.text))

    def _write(
        self,
        question: str,
        language: str,
        evidence: Evidence,
        relevance: np.ndarray,
        chosen: Sentence,
        candidates: list[int],
        pick: int,
    ) -> Iterator[str]:
        cont = getattr(self.generator, "continue_reply", None)
        if cont is not None:  # an English answer to the sentence the reader chose
            messages = pick_messages(language, [evidence.sentences[i].text for i in candidates], question)
            yield from cont(messages, f"{PICK_PREFIX}{pick + 1}] ", 60)
            return
        yield from self.generator.generate(self._request(question, language, evidence, relevance))

    def _finish(self, answer: Answer, t0: float, first: float | None) -> Answer:
        now = time.perf_counter()
        timings = dict(answer.timings)
        timings["first_token_s"] = (first or now) - t0
        timings["total_s"] = now - t0
        return Answer(**{**answer.__dict__, "timings": timings})

    def warm(self) -> None:
        """Read the fixed prompt prefix of each language into a local model's prompt cache,
        so that the first question pays only for its own sentences."""
        choose = getattr(self.generator, "choose", None)
        if choose is not None:
            for language in NO_ANSWER:
                choose(pick_messages(language, ["…"], "…"), PICK_PREFIX, ["0", "1"])
            return
        warm = getattr(self.generator, "warm", None)
        if warm is not None:
            warm([_answer_messages(language, "…") for language in NO_ANSWER])

    # ----- steps
    def rewrite(self, question: str, history: Sequence[str], language: str) -> str:
        """A standalone version of a follow-up question."""
        fallback = f"{history[-1]} {question}"
        if not self.generator.is_llm:
            return fallback
        messages = [
            {"role": "system", "content": REWRITE_SYSTEM[language]},
            {
                "role": "user",
                "content": render(
                    REWRITE_USER[language], history="\n".join(f"- {h}" for h in history[-3:]), question=question
                ),
            },
        ]
        text = "".join(self.generator.generate(GenerationRequest(messages, 60, language))).strip()
        text = text.splitlines()[0].strip().strip('"„“') if text else ""
        # Accept only a plausible question that keeps the follow-up's own content words.
        from index.keyword import analyze

        own = set(analyze(question))
        before = set(analyze(" ".join(history)))
        terms = set(analyze(text))
        keeps_question = not own or bool(own & terms)
        adds_context = bool((terms - own) & before)  # "Und wo?" -> "Wo?" resolves nothing
        if not text or len(text) > 3 * len(fallback) + 40 or not keeps_question or not adds_context:
            return fallback
        return text

    def _request(self, question: str, language: str, evidence: Evidence, relevance: np.ndarray) -> GenerationRequest:
        blocks = [
            render(PASSAGE[language], n=i + 1, text=_neutralize(text))
            for i, text in evidence.context(relevance, self.settings.context_sentences).items()
        ]
        messages = _answer_messages(language, render(USER[language], passages="\n\n".join(blocks), question=question))
        best = int(np.argmax(relevance))
        ranked = ((evidence.sentences[best].passage + 1, evidence.sentences[best].text),)
        return GenerationRequest(messages, self.settings.max_answer_tokens, language, ExtractiveChoice(ranked))

    def check(self, draft: str, evidence: Evidence, language: str, cross: bool, passages: Sequence[Passage]) -> dict:
        """Grounding: keep, re-cite or drop each sentence; resolve citations to verbatim quotes."""
        claims = parse_answer(_MARKUP.sub("", draft))  # answers are plain text: markup echoed from a prompt goes
        if not claims or any(NO_ANSWER_PATTERNS.search(c.text) for c in claims[:1]):
            return self._abstain(language)
        kept: list[Claim] = []
        spans: dict[tuple[int, int], tuple[int, int]] = {}  # (claim idx, n) -> article span
        for claim in claims:
            if NO_ANSWER_PATTERNS.search(claim.text) or len(claim.text.split()) < 3:
                continue
            cites = valid_cites(claim, len(passages))
            supported = []
            for n in cites:
                s = evidence.support(claim.text, cross, only_passage=n - 1)
                if s is not None and s.score >= self.settings.min_support:
                    supported.append((n, s))
            if not supported:  # re-cite to whichever passage supports it, if any
                s = evidence.support(claim.text, cross)
                if s is not None and s.score >= self.settings.min_support:
                    supported = [(s.passage + 1, s)]
            if not supported:
                continue
            idx = len(kept)
            kept.append(Claim(claim.text, tuple(n for n, _ in supported)))
            for n, s in supported:
                spans[(idx, n)] = (s.start, s.end)
        if not kept:
            return self._abstain(language)
        citations = []
        seen = set()
        for (_claim, n), (start, end) in spans.items():
            if (n, start, end) in seen:
                continue
            seen.add((n, start, end))
            p = passages[n - 1]
            quote = p.text[start - p.start : end - p.start]
            citations.append(Citation(n=n, passage_id=p.id, source=p.source, start=start, end=end, quote=quote))
        return {"answer": render_claims(kept), "abstained": False, "citations": tuple(citations)}

    @staticmethod
    def _abstain(language: str) -> dict:
        return {"answer": NO_ANSWER[language], "abstained": True, "citations": ()}


def _answer_messages(language: str, user: str) -> list[dict[str, str]]:
    """The fixed system prompt and worked example, then the question turn."""
    example_user, example_answer = EXAMPLE[language]
    return [
        {"role": "system", "content": render(SYSTEM[language], no_answer=NO_ANSWER[language])},
        {"role": "user", "content": example_user},
        {"role": "assistant", "content": example_answer},
        {"role": "user", "content": user},
    ]


_MARKUP = re.compile(r"</?[A-Za-z][\w:-]*(?:\s[^<>]*)?/?>")  # an HTML tag: "<b>", "<img src=x ...>", "</script>"


def _neutralize(text: str) -> str:
    """Article text cannot close its own delimiter and pose as the prompt."""
    return re.sub(r"</?\s*(auszug|excerpt)[^>]*>", " ", text, flags=re.I)


def pick_messages(language: str, sentences: Sequence[str], question: str) -> list[dict[str, str]]:
    """The reader's prompt: fixed system text and two worked examples (one answerable, one
    not; a neutral subject), then the numbered candidate sentences and the question."""
    messages = [{"role": "system", "content": PICK_SYSTEM[language]}]
    for user, reply in PICK_EXAMPLES[language]:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]
    lines = "\n".join(
        render(PICK_LINE, n=i + 1, text=_neutralize(" ".join(t.split()))) for i, t in enumerate(sentences)
    )
    messages.append({"role": "user", "content": render(PICK_USER[language], sentences=lines, question=question)})
    return messages


def verify_messages(
    messages: list[dict[str, str]], language: str, n: int, text: str, question: str
) -> list[dict[str, str]]:
    """The pick conversation, the reader's pick, and the yes/no check of it."""
    return [
        *messages,
        {"role": "assistant", "content": f"{PICK_PREFIX}{n}]"},
        {
            "role": "user",
            "content": render(VERIFY_USER[language], n=n, text=_neutralize(" ".join(text.split())), question=question),
        },
    ]


def _signals(
    evidence: Evidence, question: str, passages: Sequence[Passage], lexical_top: float, paraphrase: float
) -> Signals:
    """The similarity signals. The margin asks whether one sentence stands out; sentences
    that say the same as the best one (another outlet's copy, a restatement: cosine to it of
    at least ``paraphrase``) are not its competitors, or a fact that several sources state
    would look less certain than one stated once."""
    cosines = evidence.cosines(question)
    order = [int(i) for i in np.argsort(-cosines, kind="stable")]
    best = order[0]
    rivals = [float(cosines[i]) for i in order[1:] if evidence.sentence_similarity(best, i) < paraphrase][:4]
    top = [float(cosines[best]), *rivals]
    passage_scores = [p.dense_score for p in passages if p.dense_score is not None] or [top[0]]
    return Signals(
        dense_top=top[0],
        dense_margin=top[0] - float(np.median(top)),
        passage_dense=float(max(passage_scores)),
        lexical_top=lexical_top,
        dense_lift=top[0] - float(np.mean(cosines)),
        passage_lift=float(max(passage_scores) - np.median(passage_scores)),
    )


def _copies(citation: Citation, passage: Passage) -> list[Citation]:
    """The same sentence in the passage's copies (other outlets' versions of it, found at
    indexing): each is cited under the same [n], with its own verbatim span."""
    out = []
    for copy in passage.also_in:
        at = copy.text.find(citation.quote)
        if at >= 0 and copy.source != citation.source:
            out.append(
                Citation(
                    n=citation.n,
                    passage_id=copy.id,
                    source=copy.source,
                    start=copy.start + at,
                    end=copy.start + at + len(citation.quote),
                    quote=citation.quote,
                )
            )
    return out


def _cite(text: str, n: int) -> str:
    body = text.strip()
    stop = body[-1] if body and body[-1] in ".!?" else "."
    body = body[:-1] if body and body[-1] in ".!?" else body
    return f"{body.rstrip()} [{n}]{stop}"
