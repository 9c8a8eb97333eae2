"""Measure retrieval on the gold set and XQuAD (dense / keyword / hybrid, and fusion
variants) and write the numbers as JSON and Markdown.

    python -m eval.bench_retrieval --out eval/results

Gold set: the sample articles are indexed into a fresh temporary store (so the
indexing time is a cold one) and every mode runs through ``Pipeline.retrieve``.
XQuAD: its 240 paragraphs live in a cached store of their own (see :mod:`eval.stores`);
the indexing time reported is that of the run that embedded them. Its 2 x 1,190
questions are embedded once each and every mode and fusion rule is scored from the same
candidates (:func:`eval.retrieval.fusion_variants`); ``Pipeline.retrieve`` runs per mode
on every 10th question for the latency and to confirm identical rankings. Per-question
records are kept for the gold set only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import datetime, UTC
from collections.abc import Callable
from pathlib import Path

from eval.datasets import XQUAD_DIR, load_gold, load_xquad
from eval.retrieval import MODE_RULES, MODES, evaluate_retrieval, fusion_variants, slice_metrics, timed_sample
from eval.stores import ensure_indexed, open_pipeline

# keyword weight rules compared on XQuAD, all fusing the dense ranking with the keyword
# ranking weighted by a function of the query's coverage; coverage ** 0 == 1 is plain RRF
POWERS = (0.5, 1, 2, 3, 4, 6, 8)


def _power(p: float) -> Callable[[float], float]:
    return lambda c: c**p


FUSION_RULES: dict[str, Callable[[float], float]] = {
    "dense only (w=0)": lambda c: 0.0,
    "RRF (w=1 = cov^0)": lambda c: 1.0,
    **{f"cov^{p:g}": _power(p) for p in POWERS},
}
LATENCY_EVERY = 10  # Pipeline.retrieve_timed on every 10th XQuAD question per mode (119 each)

GOLD_SLICES = {
    "de single-turn": lambda r: r["lang"] == "de" and r["turns"] == 1,
    "en single-turn": lambda r: r["lang"] == "en" and r["turns"] == 1,
    "multi-turn (history prepended)": lambda r: r["turns"] > 1,
    "all answerable": lambda r: True,
}


def run(out: Path, xquad_dir: Path, store: Path | None, modes: tuple[str, ...], limit: int | None) -> dict:
    results: dict = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "settings": {},
        "indexing": {},
        "gold": {},
        "xquad": {},
        "fusion": {},
    }
    gold = load_gold()
    with tempfile.TemporaryDirectory(prefix="rag-eval-gold-") as tmp:
        first = open_pipeline(gold, tmp, retrieval="hybrid")
        results["settings"] = {
            k: v
            for k, v in first.settings.model_dump(mode="json").items()
            if k in ("embedder", "chunk_size", "chunk_overlap", "candidates", "rrf_k", "top_k")
        }
        results["indexing"]["sample articles (fresh store)"] = ensure_indexed(first, gold)
        for mode in modes:
            result = evaluate_retrieval(open_pipeline(gold, tmp, retrieval=mode), gold.items, progress=f"gold {mode}")
            results["gold"][mode] = {name: slice_metrics(result, keep) for name, keep in GOLD_SLICES.items()}
            results["gold"][mode]["records"] = result["records"]

    de, en = (load_xquad(lang, xquad_dir) for lang in ("de", "en"))
    if limit:
        de = de.__class__(**{**de.__dict__, "items": de.items[:limit]})
        en = en.__class__(**{**en.__dict__, "items": en.items[:limit]})
    pipeline = open_pipeline(de, store, retrieval="hybrid")
    results["indexing"]["xquad (cached store)"] = ensure_indexed(pipeline, de, progress=True)
    results["indexing"]["xquad (cached store)"]["store"] = str(pipeline.settings.store)
    from rag.retrieve import COVERAGE_POWER

    rules = {
        "dense": MODE_RULES["dense"],
        "keyword": MODE_RULES["keyword"],
        "hybrid": (True, lambda c: c**COVERAGE_POWER),
        **{name: (True, fn) for name, fn in FUSION_RULES.items()},
    }
    for ds in (de, en):
        variants = fusion_variants(pipeline, ds.items, rules, progress=f"{ds.name} candidates")
        results["fusion"][ds.name] = {
            "rules": {name: variants["rules"][name] for name in FUSION_RULES},
            "coverage_mean": variants["coverage_mean"],
        }
        for mode in modes:
            timed = timed_sample(
                open_pipeline(ds, store, retrieval=mode), ds.items, LATENCY_EVERY, progress=f"{ds.name} {mode} timed"
            )
            same = sum(ids == variants["rankings"][mode][qid] for qid, ids in timed["rankings"].items())
            results["xquad"].setdefault(ds.name, {})[mode] = {
                **variants["rules"][mode],
                "latency": timed["latency"],
                "pipeline_check": {"sampled": len(timed["rankings"]), "identical_rankings": same},
            }

    results["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out.mkdir(parents=True, exist_ok=True)
    (out / "retrieval.json").write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    (out / "retrieval.md").write_text(markdown(results), encoding="utf-8")
    return results


def _machine() -> dict:
    import subprocess

    from rag.retrieve import COVERAGE_POWER

    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "commit": commit,
        "coverage_power": COVERAGE_POWER,
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _f(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def markdown(results: dict) -> str:
    lines = [
        f"# Retrieval measurements ({results['created']})",
        "",
        f"Settings: {json.dumps(results['settings'])}. Machine: {json.dumps(results['machine'])}.",
        "",
        "Article-level ranking (chunks deduplicated by source, 20 chunks retrieved). "
        "Evidence@k: one of the first k chunks contains the gold evidence (XQuAD: the answer's sentence). "
        "With five articles, hit@5 on the gold set is 1 by construction: hit@1, MRR and evidence@k carry the signal.",
        "",
        "## Indexing",
        "",
        "| corpus | articles | chunks | seconds | embed s | chunks/s |",
        "|---|---|---|---|---|---|",
    ]
    for name, rep in results["indexing"].items():
        if not rep.get("chunks") and rep.get("first"):
            rep = rep["first"]  # this run was a no-op: show the run that embedded the corpus
        n = len(rep.get("added", [])) + len(rep.get("updated", []))
        rate = rep["chunks"] / rep["seconds"] if rep.get("seconds") else None
        lines.append(
            f"| {name} | {n} | {rep['chunks']} | {_f(rep['seconds'], 1)} | "
            f"{_f(rep['stages'].get('embed'), 1)} | {_f(rate, 2)} |"
        )
    lines += [
        "",
        "## Gold set (sample articles)",
        "",
        "| mode | slice | n | hit@1 | hit@5 | recall@5 | MRR@10 | evidence@1 | evidence@5 | retrieve p50 / p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for mode, slices in results["gold"].items():
        for name, s in slices.items():
            if name == "records":
                continue
            m, lat = s["metrics"], s["latency"]
            lines.append(
                f"| {mode} | {name} | {s['questions']} | {_f(m.get('hit@1'))} | {_f(m.get('hit@5'))} | "
                f"{_f(m.get('recall@5'))} | {_f(m.get('mrr@10'))} | {_f(m.get('evidence@1'))} | "
                f"{_f(m.get('evidence@5'))} | "
                f"{_f(lat['p50_ms'], 1)} / {_f(lat['p95_ms'], 1)} |"
            )
    lines += [
        "",
        "## XQuAD (240 German paragraphs)",
        "",
        "| questions | mode | n | R@1 | R@5 | R@10 | MRR@10 | nDCG@10 | evidence@5 | retrieve p50 / p95 ms | "
        "same ranking as Pipeline.retrieve |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for ds, modes in results["xquad"].items():
        for mode, r in modes.items():
            m, lat = r["metrics"], r["latency"]
            lines.append(
                f"| {ds} | {mode} | {r['questions']} | {_f(m['recall@1'])} | {_f(m['recall@5'])} | "
                f"{_f(m['recall@10'])} | {_f(m['mrr@10'])} | {_f(m['ndcg@10'])} | "
                f"{_f(m.get('evidence@5'))} | {_f(lat['p50_ms'], 1)} / {_f(lat['p95_ms'], 1)} | "
                f"{r['pipeline_check']['identical_rankings']}/{r['pipeline_check']['sampled']} |"
            )
    lines += [
        "",
        "## Fusion variants on XQuAD (keyword weight as a function of query coverage)",
        "",
        "| rule | de R@1 | de R@5 | de nDCG@10 | en R@1 | en R@5 | en nDCG@10 | mean nDCG@10 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fusion = results["fusion"]
    if "xquad-de" in fusion and "xquad-en" in fusion:
        shipped = f"cov^{results['machine']['coverage_power']:g}"
        for rule in FUSION_RULES:
            d, e = fusion["xquad-de"]["rules"][rule]["metrics"], fusion["xquad-en"]["rules"][rule]["metrics"]
            lines.append(
                f"| {rule}{' (shipped)' if rule == shipped else ''} | {_f(d['recall@1'])} | {_f(d['recall@5'])} | "
                f"{_f(d['ndcg@10'])} | "
                f"{_f(e['recall@1'])} | {_f(e['recall@5'])} | {_f(e['ndcg@10'])} | "
                f"{_f((d['ndcg@10'] + e['ndcg@10']) / 2)} |"
            )
        lines.append("")
        lines.append(
            f"Mean query coverage: de {_f(fusion['xquad-de']['coverage_mean'])}, "
            f"en {_f(fusion['xquad-en']['coverage_mean'])}."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results"))
    parser.add_argument("--xquad", type=Path, default=XQUAD_DIR, help="folder with xquad.de.json and xquad.en.json")
    parser.add_argument("--store", type=Path, default=None, help="XQuAD store folder (default: the user cache)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--limit", type=int, default=None, help="first N XQuAD questions only (smoke runs)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = run(args.out, args.xquad, args.store, tuple(args.modes), args.limit)
    print(markdown(results))
    print(f"wrote {args.out / 'retrieval.json'} and retrieval.md in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
