"""Support judges: does a passage support a claim? Behind a one-method protocol.

- :class:`LexicalJudge` (``lexical``): fast and deterministic. Hard checks first:
  every number in the claim must be in the passage, and so must its names; then the
  share of the claim's stemmed content words (``index.keyword.analyze``) the passage
  holds. Blind to paraphrase and to translation: an English claim about a German
  passage only scores on its names and numbers.
- :class:`LLMJudge` (``llm``): the probability of "Ja"/"Yes" against "Nein"/"No" as the
  next token of a small instruct model asked whether the text supports the claim.
  Any :class:`YesNoModel` works: the packaged local model (:class:`LlamaYesNo`, next-token
  logits read after evaluating the prompt) or an OpenAI-compatible server
  (:class:`OpenAIYesNo`, logprobs when the server gives them, else the word it answers).

The judges are deliberately *not* the product's own grounding check
(:mod:`rag.answer.evidence`): grading the check with itself would measure nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import httpx
    from llama_cpp import Llama

    from rag.settings import Settings

JUDGE_THRESHOLD = 0.5  # a score at or above this counts as "supported"


class SupportJudge(Protocol):
    """How strongly ``passage`` supports ``claim``: 0 (not at all) .. 1 (fully)."""

    name: str

    def supports(self, claim: str, passage: str) -> float: ...


# ----- lexical judge
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
_CAPITALIZED = re.compile(r"(?<![\w-])[A-ZÄÖÜ][\w]*(?:[-‐‑][\w]+)*")
_NAME_STOP = frozenset(
    """
    Der Die Das Den Dem Des Ein Eine Einen Einem Einer Es Er Sie Wir Ich Ihr Im In Am An Auf Aus Bei Mit Nach
    Von Vor Zu Zum Zur Und Oder Aber Auch Als Wie Wenn Dass Laut Seit Bis Für Über Unter Nicht Noch Nur So Dies
    Diese Dieser Dieses Damit Dabei Dazu Doch Denn Da Dort Hier Heute Bereits Zudem Außerdem Jedoch Allerdings
    The A An It He She They We I This That These Those In On At By For From With Of To And Or But As If When
    According However Also Yes No Ja Nein There Then Its His Her Their Our Was Were Is Are Has Have Had
    """.split()
)


def claim_numbers(text: str) -> set[str]:
    """Digits in a text, normalized: 1.000 / 1,000 -> 1000, 4,2 -> 4.2."""
    out = set()
    for token in _DIGITS.findall(text):
        token = token.rstrip(".,")
        if re.fullmatch(r"\d{1,3}([.,]\d{3})+", token):
            token = re.sub(r"[.,]", "", token)
        out.add(token.replace(",", "."))
    return out


def claim_names(text: str) -> list[str]:
    """Capitalized words that are not function words: names and, in German, nouns too.
    Acronyms and hyphenated names (KN-23, UN-Sicherheitsrat) included."""
    return list(dict.fromkeys(m.group() for m in _CAPITALIZED.finditer(text) if m.group() not in _NAME_STOP))


def _word_found(word: str, passage_terms: set[str], passage_lower: str) -> bool:
    """A name is in the passage as a stemmed term, or as a word prefix (Putins -> Putin)."""
    from index.keyword import analyze

    terms = analyze(word)
    if terms and all(t in passage_terms for t in terms):
        return True
    stem = word.lower()[: max(4, len(word) - 2)]
    return re.search(r"(?<!\w)" + re.escape(stem), passage_lower) is not None


class LexicalJudge:
    """Numbers and names must be there; then stemmed content-word coverage.

    score = 0 when a number of the claim is missing; otherwise the mean of content-word
    coverage and name coverage (content-word coverage alone when the claim has no names).
    """

    name = "lexical"

    def __init__(self, threshold: float = JUDGE_THRESHOLD) -> None:
        self.threshold = threshold

    def supports(self, claim: str, passage: str) -> float:
        from index.keyword import analyze

        if not claim.strip() or not passage.strip():
            return 0.0
        if claim_numbers(claim) - claim_numbers(passage):
            return 0.0
        passage_terms = set(analyze(passage))
        passage_lower = passage.lower()
        terms = set(analyze(claim))
        content = (
            sum(1 for t in terms if t in passage_terms or _part_of(t, passage_terms)) / len(terms) if terms else 0.0
        )
        names = claim_names(claim)
        if not names:
            return round(content, 4)
        name_share = sum(_word_found(n, passage_terms, passage_lower) for n in names) / len(names)
        return round((content + name_share) / 2, 4)


def _part_of(term: str, passage_terms: set[str]) -> bool:
    """German compounds: a claim's 'munition' is in the passage's 'artilleriemunition'."""
    return len(term) >= 5 and any(
        len(p) > len(term) and (p.endswith(term) or p.startswith(term)) for p in passage_terms
    )


# ----- LLM judge
class YesNoModel(Protocol):
    """P(yes) of the next token for a chat; ``LocalLlamaGenerator`` has this method."""

    def yes_probability(self, messages: list[dict[str, str]]) -> float: ...


def judge_messages(claim: str, passage: str) -> list[dict[str, str]]:
    from rag.answer.prompts import JUDGE_SYSTEM, JUDGE_USER, render

    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": render(JUDGE_USER, passage=passage.strip(), claim=claim.strip())},
    ]


class LLMJudge:
    """Yes/no probability of an instruct model; the model is any :class:`YesNoModel`."""

    def __init__(self, model: YesNoModel, name: str = "llm", max_passage_chars: int = 2400) -> None:
        self.model = model
        self.name = name
        self.threshold = JUDGE_THRESHOLD
        self._max = max_passage_chars
        self._cache: dict[tuple[str, str], float] = {}

    def supports(self, claim: str, passage: str) -> float:
        if not claim.strip() or not passage.strip():
            return 0.0
        key = (claim, passage)
        if key not in self._cache:
            p = float(self.model.yes_probability(judge_messages(claim, passage[: self._max])))
            self._cache[key] = min(max(p, 0.0), 1.0)
        return self._cache[key]


class OpenAIYesNo:
    """:class:`YesNoModel` over an OpenAI-compatible chat-completions endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "not-needed",
        timeout: float = 120.0,
        client: httpx.Client | None = None,
    ) -> None:
        import httpx

        self._url = base_url.rstrip("/") + "/chat/completions"
        self._model = model
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._client = client or httpx.Client(timeout=httpx.Timeout(timeout, connect=5.0))

    def yes_probability(self, messages: list[dict[str, str]]) -> float:
        from rag.errors import ModelUnavailable

        body = {
            "model": self._model,
            "messages": messages,
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": 20,
        }
        try:
            response = self._client.post(self._url, json=body, headers=self._headers)
        except Exception as exc:  # httpx.HTTPError and friends
            raise ModelUnavailable(f"Cannot reach the judge model at {self._url} ({type(exc).__name__}).") from exc
        if response.status_code >= 400:
            raise ModelUnavailable(
                f"The judge model at {self._url} answered {response.status_code}: {response.text[:200]}"
            )
        choice = (response.json().get("choices") or [{}])[0]
        content = ((choice.get("logprobs") or {}).get("content")) or []
        if content and content[0].get("top_logprobs"):
            return yes_share([(t["token"], t["logprob"]) for t in content[0]["top_logprobs"]])
        text = ((choice.get("message") or {}).get("content") or "").strip().lower()
        return 1.0 if text.startswith(("ja", "yes")) else 0.0 if text.startswith(("nein", "no")) else 0.5


def yes_share(top: Sequence[tuple[str, float]]) -> float:
    """P(yes) / (P(yes) + P(no)) from (token, logprob) pairs; 0.5 when neither is there."""
    yes = sum(math.exp(lp) for tok, lp in top if tok.strip().lower() in ("ja", "yes"))
    no = sum(math.exp(lp) for tok, lp in top if tok.strip().lower() in ("nein", "no", "ne"))  # Qwen: "Ne"+"in"
    return yes / (yes + no) if yes + no > 0 else 0.5


class LlamaYesNo:
    """:class:`YesNoModel` over a ``llama_cpp.Llama``: the prompt is evaluated and the
    next-token logits are read directly, so it works on a model loaded with
    ``logits_all=False`` (llama-cpp-python refuses ``logprobs`` there). The chat template
    is the one in the GGUF file; the KV cache of a shared prompt prefix is reused."""

    YES = ("Ja", "ja", "Yes", "yes", " Ja", " Yes")
    NO = ("Nein", "nein", "No", "no", " Nein", " No")

    def __init__(self, llm: Llama) -> None:
        import threading

        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._llm = llm
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError("the GGUF file has no chat template")
        eos = llm.detokenize([llm.token_eos()], special=True).decode("utf-8", "ignore")
        self._format = Jinja2ChatFormatter(template, eos_token=eos, bos_token="")
        self._yes = self._first_tokens(self.YES)
        self._no = [t for t in self._first_tokens(self.NO) if t not in self._yes]
        if not self._yes or not self._no:
            raise ValueError("the model's vocabulary gives no yes/no tokens")
        self._lock = threading.Lock()

    def _first_tokens(self, words: Sequence[str]) -> list[int]:
        """First token of each word: Qwen writes "Nein" as "Ne" + "in", so "Ne" carries the no."""
        ids = []
        for word in words:
            tokens = self._llm.tokenize(word.encode(), add_bos=False, special=False)
            if tokens and tokens[0] not in ids:
                ids.append(tokens[0])
        return ids

    def yes_probability(self, messages: list[dict[str, str]]) -> float:
        import llama_cpp
        import numpy as np

        from rag.answer.generators import llama_messages

        prompt = self._format(messages=llama_messages(messages)).prompt
        with self._lock:
            llm = self._llm
            tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
            if len(tokens) >= llm.n_ctx():
                tokens = tokens[-(llm.n_ctx() - 1) :]
            keep = min(llm.longest_token_prefix(list(llm.eval_tokens), tokens), len(tokens) - 1)
            llm.n_tokens = keep  # eval() drops the KV cache after this point
            llm.eval(tokens[keep:])
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))
            chosen = np.array([logits[i] for i in self._yes + self._no], dtype=np.float64)
        weights = np.exp(chosen - chosen.max())
        return float(weights[: len(self._yes)].sum() / weights.sum())


def load_llama_yes_no(settings: Settings) -> LlamaYesNo:
    """The packaged instruct model (settings.local_model), loaded for judging only."""
    import os

    from rag.answer.models import model_file
    from rag.errors import ModelUnavailable

    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelUnavailable(
            "The LLM judge needs llama-cpp-python: run `make setup`, or use --judge lexical."
        ) from exc
    path = model_file(settings.local_model, settings.cache_dir)
    threads = settings.llm_threads or os.cpu_count() or 1
    llm = Llama(
        model_path=str(path),
        n_ctx=2048,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
        logits_all=False,
        seed=0,
    )
    return LlamaYesNo(llm)


def make_judge(name: str, settings: Settings | None = None) -> SupportJudge:
    """'lexical', 'llm' (the local instruct model) or 'openai' (settings' OpenAI-compatible server)."""
    if name == "lexical":
        return LexicalJudge()
    from rag.settings import Settings

    settings = settings or Settings()
    if name == "llm":
        # Not LocalLlamaGenerator.yes_probability: it asks llama.cpp for logprobs, which a model
        # loaded with logits_all=False refuses (ValueError). Its own small context instead.
        return LLMJudge(load_llama_yes_no(settings), name=f"llm:local:{settings.local_model}")
    if name == "openai":
        model = OpenAIYesNo(
            settings.openai_base_url, settings.openai_model, settings.openai_api_key, settings.request_timeout
        )
        return LLMJudge(model, name=f"llm:openai:{settings.openai_model}")
    raise ValueError(f"Unknown judge {name!r}: use lexical, llm or openai.")


# ----- agreement
def agreement(
    pairs: Sequence[tuple[float, float]], threshold_a: float = JUDGE_THRESHOLD, threshold_b: float = JUDGE_THRESHOLD
) -> dict[str, float | int | None]:
    """How often two judges make the same supported / not-supported call, and Cohen's kappa."""
    n = len(pairs)
    if not n:
        return {"n": 0, "agreement": None, "kappa": None, "a_yes": None, "b_yes": None}
    a = [x >= threshold_a for x, _ in pairs]
    b = [y >= threshold_b for _, y in pairs]
    agree = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(a) / n, sum(b) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    kappa = (agree - expected) / (1 - expected) if expected < 1 else None
    return {
        "n": n,
        "agreement": round(agree, 4),
        "kappa": None if kappa is None else round(kappa, 4),
        "a_yes": round(pa, 4),
        "b_yes": round(pb, 4),
    }


def calibrate(pairs: Sequence[tuple[float, float]], reference_threshold: float = JUDGE_THRESHOLD) -> dict:
    """The fast judge's threshold that agrees best with the reference judge (ties: the one
    closest to the default), with the agreement at the default and at the best threshold."""
    candidates = sorted({round(x, 2) for x, _ in pairs} | {JUDGE_THRESHOLD})
    best = max(
        candidates,
        key=lambda t: (agreement(pairs, t, reference_threshold)["agreement"] or 0.0, -abs(t - JUDGE_THRESHOLD)),
        default=JUDGE_THRESHOLD,
    )
    return {
        "default": {"threshold": JUDGE_THRESHOLD, **agreement(pairs, JUDGE_THRESHOLD, reference_threshold)},
        "best": {"threshold": best, **agreement(pairs, best, reference_threshold)},
    }
