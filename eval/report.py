"""Turning a report dict into Markdown tables, a printed summary, PNG plots, and the
metric-by-metric comparison of two reports. No evaluation happens here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The metrics of the summary table, in order: (section, key, label).
KEY_METRICS = (
    ("retrieval", "hit@1", "retrieval hit@1"),
    ("retrieval", "hit@5", "retrieval hit@5"),
    ("retrieval", "recall@5", "retrieval recall@5"),
    ("retrieval", "mrr@10", "retrieval MRR@10"),
    ("retrieval", "ndcg@10", "retrieval nDCG@10"),
    ("retrieval", "evidence@5", "evidence in top-5 passages"),
    ("answers", "contains", "answer contains gold"),
    ("answers", "token_f1", "answer token F1"),
    ("answers", "abstention_accuracy", "abstention accuracy (unanswerable)"),
    ("answers", "false_abstention_rate", "false abstention rate (answerable)"),
    ("answerability", "auc", "answerability AUC"),
    ("sentences", "@6", "gold sentence in the best 6"),
    ("grounding", "citation_precision", "citation precision"),
    ("grounding", "citation_recall", "citation recall"),
    ("grounding", "quotes_verbatim", "verbatim quotes"),
)
LOWER_IS_BETTER = ("false_abstention_rate", "_ms", "errors")


def _f(value: object, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def flatten(metrics: dict, prefix: str = "") -> dict[str, float]:
    """{"answers": {"contains": .8}} -> {"answers.contains": .8}; numbers only."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def _title(report: dict) -> str:
    ds = report["dataset"]
    return (
        f"dataset {ds['name']} ({ds['questions']} questions), generator {report.get('generator') or '–'}, "
        f"judge {report.get('judge') or '–'}"
    )


def summary_table(report: dict) -> str:
    """The table printed at the end of a run."""
    metrics = report["metrics"]
    rows = [
        (label, metrics.get(section, {}).get(key))
        for section, key, label in KEY_METRICS
        if key in metrics.get(section, {})
    ]
    for name, lat in metrics.get("latency", {}).items():
        rows.append(
            (f"latency {name.removesuffix('_s')} p50 / p95 ms", f"{_f(lat['p50_ms'], 0)} / {_f(lat['p95_ms'], 0)}")
        )
    width = max(len(label) for label, _ in rows) if rows else 10
    lines = [_title(report), "-" * (width + 14)]
    lines += [f"{label:<{width}}  {_f(value):>11}" for label, value in rows]
    return "\n".join(lines)


def markdown(report: dict) -> str:
    m = report["metrics"]
    lines = [
        "# Evaluation report",
        "",
        f"{_title(report)}. Created {report['created']}, {report.get('seconds', 0):.0f} s.",
        "",
        f"Settings: `{json.dumps(report.get('settings', {}))}`",
        "",
    ]
    r = m.get("retrieval", {})
    if r:
        lines += [
            "## Retrieval (article level: chunks deduplicated by source)",
            "",
            "| questions | hit@1 | hit@3 | hit@5 | hit@10 | recall@1 | recall@5 | recall@10 | MRR@10 | nDCG@10 | "
            "evidence@1 | evidence@5 |",
            "|" + "---|" * 12,
            "| "
            + " | ".join(
                _f(r.get(k))
                for k in (
                    "questions",
                    "hit@1",
                    "hit@3",
                    "hit@5",
                    "hit@10",
                    "recall@1",
                    "recall@5",
                    "recall@10",
                    "mrr@10",
                    "ndcg@10",
                    "evidence@1",
                    "evidence@5",
                )
            )
            + " |",
            "",
        ]
    if "answers" in m:
        lines += [
            "## Answers and grounding",
            "",
            "| slice | n | contains | token F1 | abstention acc. | "
            "false abstention | citation precision | citation recall | verbatim quotes |",
            "|" + "---|" * 9,
        ]
        for name, s in [("all", {k: m[k] for k in ("answers", "grounding")}), *report.get("slices", {}).items()]:
            a, g = s["answers"], s["grounding"]
            lines.append(
                f"| {name} | {a['questions']} | {_f(a['contains'])} | {_f(a['token_f1'])} | "
                f"{_f(a['abstention_accuracy'])} | {_f(a['false_abstention_rate'])} | "
                f"{_f(g['citation_precision'])} | {_f(g['citation_recall'])} | {_f(g['quotes_verbatim'])} |"
            )
        lines += ["", f"Support judge: **{report.get('judge') or 'none'}**. Errors: {m['answers']['errors']}.", ""]
    if "sentences" in m:
        sr = m["sentences"]
        lines += [
            "## Evidence selection: the gold sentence among the B best-ranked sentences",
            "",
            "| questions | " + " | ".join(f"@{b}" for b in range(1, 10)) + " | reader budget |",
            "|" + "---|" * 11,
            f"| {sr['questions']} | "
            + " | ".join(_f(sr.get(f"@{b}")) for b in range(1, 10))
            + f" | {sr.get('budget')} |",
            "",
        ]
    if "answerability" in m and m["answerability"]["questions"]:
        ab = m["answerability"]
        op = ab["operating_point"]
        lines += [
            "## Answerability: precision / recall over the calibrated P(answerable)",
            "",
            f"AUC {_f(ab['auc'])}. Operating point (what the answers did): precision {_f(op['precision'])}, "
            f"recall {_f(op['recall'])}, abstention on unanswerable {_f(op['abstention'])}.",
            "",
            "| threshold | precision | recall | abstention |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {c['threshold']:.2f} | {_f(c['precision'])} | {_f(c['recall'])} | {_f(c['abstention'])} |"
            for c in ab["curve"]
        ]
        lines.append("")
    if m.get("latency"):
        lines += ["## Latency", "", "| stage | n | p50 ms | p95 ms |", "|---|---|---|---|"]
        for name, lat in m["latency"].items():
            lines.append(f"| {name} | {lat['n']} | {_f(lat['p50_ms'], 1)} | {_f(lat['p95_ms'], 1)} |")
        lines.append("")
    cal = report.get("calibration")
    if cal:
        lines += [
            f"## Judge calibration: {cal['fast']} vs {cal['reference']}",
            "",
            "| pairs | threshold | agreement | Cohen's kappa | fast says yes | reference says yes |",
            "|---|---|---|---|---|---|",
        ]
        for name in ("default", "best"):
            c = cal[name]
            lines.append(
                f"| {name} ({c['n']}) | {_f(c['threshold'], 2)} | {_f(c['agreement'])} | {_f(c['kappa'])} | "
                f"{_f(c['a_yes'])} | {_f(c['b_yes'])} |"
            )
        for lang, c in cal.get("by_language", {}).items():
            d = c["default"]
            lines.append(
                f"| {lang} ({d['n']}) | {_f(d['threshold'], 2)} | {_f(d['agreement'])} | {_f(d['kappa'])} | "
                f"{_f(d['a_yes'])} | {_f(d['b_yes'])} |"
            )
        lines.append("")
    wrong = [rec for rec in report.get("records", []) if rec["answerable"] and not rec["scores"].get("contains")]
    if wrong:
        lines += [
            "## Answerable questions without a gold string in the answer",
            "",
            "| id | question | answer |",
            "|---|---|---|",
        ]
        for rec in wrong[:40]:
            lines.append(f"| {rec['id']} | {_cell(rec['question'])} | {_cell(rec['answer'])} |")
        lines.append("")
    return "\n".join(lines)


def _cell(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ----- comparison
def compare(a: dict, b: dict) -> str:
    """Metric-by-metric deltas B - A of two reports (numbers only)."""
    fa, fb = flatten(a["metrics"]), flatten(b["metrics"])
    keys = [k for k in fa if k in fb] + [k for k in fb if k not in fa]
    width = max((len(k) for k in keys), default=10)
    lines = [
        f"A: {_title(a)} ({a.get('created', '?')})",
        f"B: {_title(b)} ({b.get('created', '?')})",
        "",
        f"{'metric':<{width}}  {'A':>10}  {'B':>10}  {'B - A':>10}",
        "-" * (width + 38),
    ]
    for key in keys:
        va, vb = fa.get(key), fb.get(key)
        delta = vb - va if va is not None and vb is not None else None
        flag = ""
        if delta:
            better = delta < 0 if any(s in key for s in LOWER_IS_BETTER) else delta > 0
            flag = "  better" if better else "  worse"
            if (
                key.endswith((".n", ".questions", "answerable", "unanswerable", ".citations"))
                or "citation_pairs" in key
            ):
                flag = ""
        lines.append(f"{key:<{width}}  {_f(va):>10}  {_f(vb):>10}  {_signed(delta):>10}{flag}")
    return "\n".join(lines)


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f}"


def load_report(path: str | Path) -> dict:
    """A report.json, its gzipped form (large committed reports), or a folder holding either."""
    path = Path(path)
    if path.is_dir():
        plain = path / "report.json"
        path = plain if plain.is_file() else path / "report.json.gz"
    if path.suffix == ".gz":
        import gzip

        return json.loads(gzip.decompress(path.read_bytes()).decode("utf-8"))
    return json.loads(path.read_text(encoding="utf-8"))


# ----- plots
def plot_all(report: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    m = report["metrics"]
    r = m.get("retrieval", {})
    if r:
        fig, ax = plt.subplots(figsize=(6, 4))
        ks = [1, 3, 5, 10]
        ax.plot(ks, [r.get(f"hit@{k}", 0) for k in ks], marker="o", label="hit@k")
        ax.plot(ks, [r.get(f"recall@{k}", 0) for k in ks], marker="s", label="recall@k")
        if "evidence@1" in r:
            ax.plot([1, 3, 5], [r.get(f"evidence@{k}", 0) for k in (1, 3, 5)], marker="^", label="evidence@k (chunks)")
        ax.set(
            xlabel="k",
            ylabel="share of questions",
            ylim=(0, 1.05),
            xticks=ks,
            title=(
                f"Retrieval, {report['dataset']['name']} (MRR@10 {_f(r.get('mrr@10'))}, nDCG@10 {_f(r.get('ndcg@10'))})"
            ),
        )
        ax.grid(alpha=0.3)
        ax.legend()
        written.append(_save(fig, out / "retrieval.png"))
    if "answers" in m:
        a, g = m["answers"], m["grounding"]
        bars = [
            ("contains", a["contains"]),
            ("token F1", a["token_f1"]),
            ("abstain\n(unanswerable)", a["abstention_accuracy"]),
            ("false\nabstain", a["false_abstention_rate"]),
            ("citation\nprecision", g["citation_precision"]),
            ("citation\nrecall", g["citation_recall"]),
            ("verbatim\nquotes", g["quotes_verbatim"]),
        ]
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.bar([b[0] for b in bars], [b[1] or 0 for b in bars], color=["C0", "C0", "C2", "C3", "C1", "C1", "C1"])
        for i, (_, v) in enumerate(bars):
            ax.text(i, (v or 0) + 0.02, _f(v, 2), ha="center")
        ax.set(ylim=(0, 1.1), title=f"Answers and grounding ({report.get('generator')}, judge {report.get('judge')})")
        written.append(_save(fig, out / "answers.png"))
    times = {
        k: [rec["timings"][k] for rec in report.get("records", []) if k in rec.get("timings", {})]
        for k in ("retrieve_s", "first_token_s", "total_s")
    }
    times = {k: v for k, v in times.items() if v}
    if not times:
        times = {"retrieve_s": [rec["retrieve_s"] for rec in report.get("retrieval_records", [])]}
    if any(times.values()):
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.boxplot(list(times.values()), whis=(5, 95), showfliers=False)
        ax.set_xticks(range(1, len(times) + 1), [k.removesuffix("_s") for k in times])
        ax.set(ylabel="seconds", title="Latency (whiskers: 5th-95th percentile)")
        ax.grid(alpha=0.3, axis="y")
        written.append(_save(fig, out / "latency.png"))
    cal = report.get("calibration")
    if cal and cal.get("pairs"):
        fig, ax = plt.subplots(figsize=(5, 5))
        pairs = cal["pairs"]
        ax.scatter(
            [p["reference"] for p in pairs],
            [p["fast"] for p in pairs],
            alpha=0.5,
            c=["C0" if p["cited"] else "C3" for p in pairs],
            s=14,
        )
        ax.axhline(cal["best"]["threshold"], color="grey", ls="--", lw=1)
        ax.axvline(0.5, color="grey", ls=":", lw=1)
        ax.set(
            xlabel=f"{cal['reference']} P(yes)",
            ylabel=f"{cal['fast']} score",
            xlim=(-0.02, 1.02),
            ylim=(-0.02, 1.02),
            title=f"Judge agreement {_f(cal['default']['agreement'], 2)} (kappa {_f(cal['default']['kappa'], 2)})",
        )
        written.append(_save(fig, out / "judges.png"))
    return written


def _save(fig: Figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
