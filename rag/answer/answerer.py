"""Question -> grounded Answer: rewrite, retrieve, select evidence, generate, check.

Whether to answer is decided here, not left to the model's obedience:
1. a follow-up is rewritten into a standalone question (by the LLM when there is one,
   validated; otherwise by carrying the previous question's words along);
2. with no passages (or, for the extractive generator, no sentence matching the
   question) the answer is the fixed no-answer sentence and no model is called;
3. the model sees only the most relevant sentences (``context_sentences`` of them over all
   passages), under their passage numbers;
4. every generated sentence is checked against the passage it cites (numbers must be
   there, plus a support score); an unsupported sentence is re-cited to the passage that
   supports it, or dropped; if nothing supported remains, the answer abstains.
Every citation resolves to a verbatim span of the article (``quote == text[start:end]``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence

from rag.answer.citations import Claim, parse_answer, render_claims, valid_cites
from rag.answer.evidence import DEFAULT_RANGE, SIMILARITY_RANGE, Evidence, VectorCache
from rag.answer.generators import ExtractiveChoice, Generator, GenerationRequest
from rag.answer.prompts import (EXAMPLE, NO_ANSWER, NO_ANSWER_PATTERNS, PASSAGE, REWRITE_SYSTEM, REWRITE_USER, SYSTEM,
                                USER, render)
from rag.lang import detect_language
from rag.settings import Settings
from rag.types import Answer, Citation, Passage

# Extractive only: below this no retrieved sentence matches the question; abstain. An LLM
# is always asked (when there are passages): its answer is then checked sentence by sentence.
MIN_RELEVANCE = 0.35


class Answerer:
    def __init__(self, pipeline, generator: Generator, settings: Settings) -> None:  # noqa: ANN001
        self.pipeline = pipeline
        self.generator = generator
        self.settings = settings
        self._vectors = VectorCache()

    # ----- public
    def stream(self, question: str, history: list[str]) -> Iterator[str | Answer]:
        t0 = time.perf_counter()
        language = detect_language(question)
        standalone = self.rewrite(question, history, language) if history else question
        passages, retrieve_s = self.pipeline.retrieve_timed(standalone, self.settings.top_k)
        timings = {"retrieve_s": retrieve_s}
        cross = language != "de"  # the articles are German; an English question needs cross-lingual matching
        evidence = Evidence(passages, self.pipeline.embedder.embed, self.pipeline.keyword.idf,
                            SIMILARITY_RANGE.get(self.settings.embedder, DEFAULT_RANGE), self._vectors)
        relevance = evidence.relevance(standalone, cross)
        base = dict(question=question, standalone_question=standalone, language=language,
                    generator=self.generator.name, passages=tuple(passages))

        gate = not self.generator.is_llm and not cross  # cross-lingual relevance has no usable absolute scale
        if not evidence.sentences or (gate and float(relevance.max()) < MIN_RELEVANCE):
            text = NO_ANSWER[language]
            yield text
            yield self._finish(Answer(answer=text, abstained=True, timings=timings, **base), t0, t0)
            return

        request = self._request(standalone, language, evidence, relevance, gate)
        draft, first = [], None
        for piece in self.generator.generate(request):
            if first is None:
                first = time.perf_counter()
            draft.append(piece)
            yield piece
        answer = self.check("".join(draft), evidence, language, cross, passages)
        yield self._finish(Answer(timings=timings, **base, **answer), t0, first)

    def _finish(self, answer: Answer, t0: float, first: float | None) -> Answer:
        now = time.perf_counter()
        timings = dict(answer.timings)
        timings["first_token_s"] = (first or now) - t0
        timings["total_s"] = now - t0
        return Answer(**{**answer.__dict__, "timings": timings})

    def warm(self) -> None:
        """Read the fixed prompt prefix of each language into a local model's prompt cache,
        so that the first question pays only for its own passages."""
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
            {"role": "user", "content": render(REWRITE_USER[language], history="\n".join(f"- {h}" for h in history[-3:]),
                                               question=question)},
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

    def _request(self, question: str, language: str, evidence: Evidence, relevance,  # noqa: ANN001
                 gate: bool) -> GenerationRequest:
        blocks = [render(PASSAGE[language], n=i + 1, text=_neutralize(text))
                  for i, text in evidence.context(relevance, self.settings.context_sentences).items()]
        messages = _answer_messages(language, render(USER[language], passages="\n\n".join(blocks), question=question))
        order = sorted(range(len(evidence.sentences)), key=lambda i: -relevance[i])
        ranked = tuple((evidence.sentences[i].passage + 1, evidence.sentences[i].text) for i in order
                       if not gate or relevance[i] >= MIN_RELEVANCE)
        # The extractive answer: the best sentence, plus the next one only when nearly as relevant.
        if len(ranked) > 1 and relevance[order[1]] < 0.9 * relevance[order[0]]:
            ranked = ranked[:1]
        return GenerationRequest(messages, self.settings.max_answer_tokens, language, ExtractiveChoice(ranked))

    def check(self, draft: str, evidence: Evidence, language: str, cross: bool,
              passages: Sequence[Passage]) -> dict:
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
        for (idx, n), (start, end) in spans.items():
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
