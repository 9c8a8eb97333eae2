#!/usr/bin/env python3
"""Validate eval/gold.jsonl against the source corpus (stdlib only).

Usage: python3 scripts/check_gold.py GOLD.jsonl CORPUS_DIR   (e.g. eval/gold.jsonl rag/data/sample_articles)
Exit code 0 if all checks pass, 1 otherwise.
"""

import json
import os
import re
import sys

if __name__ != "__main__" or len(sys.argv) != 3:
    sys.exit(__doc__)
GOLD, CORPUS = sys.argv[1], sys.argv[2]

FIELDS = {
    "id": str,
    "question": str,
    "history": list,
    "lang": str,
    "answerable": bool,
    "sources": list,
    "answers": list,
    "evidence": str,
}

MIN = {
    "total": 36,
    "de_single_answerable": 22,
    "en_answerable": 6,
    "unanswerable": 9,
    "multi_turn": 4,
    "multi_turn_en": 1,
    "unanswerable_de": 1,
    "unanswerable_en": 1,
}

errors, warnings = [], []


def err(rid, msg):
    errors.append(f"{rid}: {msg}")


articles = {}
for name in sorted(os.listdir(CORPUS)):
    if name.endswith(".txt"):
        with open(os.path.join(CORPUS, name), encoding="utf-8") as fh:
            articles[name] = fh.read()
if not articles:
    sys.exit(f"no articles found in {CORPUS}")

records = []
with open(GOLD, encoding="utf-8") as fh:
    for ln, line in enumerate(fh, 1):
        if not line.strip():
            err(f"line {ln}", "empty line")
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            err(f"line {ln}", f"invalid JSON: {e}")

ids = set()
counts = {k: 0 for k in MIN}
for n, r in enumerate(records, 1):
    rid = r.get("id", f"record {n}")
    # --- schema ---
    if set(r) != set(FIELDS):
        err(rid, f"fields {sorted(r)} != {sorted(FIELDS)}")
        continue
    bad = [k for k, t in FIELDS.items() if type(r[k]) is not t]
    if bad:
        err(rid, f"wrong type for {bad}")
        continue
    if not re.fullmatch(r"g\d{3}", rid):
        err(rid, "id must look like g001")
    if rid in ids:
        err(rid, "duplicate id")
    ids.add(rid)
    if rid != f"g{n:03d}":
        warnings.append(f"{rid}: not sequential (expected g{n:03d})")
    if r["lang"] not in ("de", "en"):
        err(rid, f"lang {r['lang']!r} not de/en")
    if not r["question"].strip():
        err(rid, "empty question")
    if not all(isinstance(h, str) and h.strip() for h in r["history"]):
        err(rid, "history must be a list of non-empty strings")
    if len(r["history"]) > 2:
        err(rid, "history longer than 2 turns")
    for key in ("sources", "answers"):
        if not all(isinstance(x, str) and x for x in r[key]):
            err(rid, f"{key} must be non-empty strings")
        if len(set(r[key])) != len(r[key]):
            err(rid, f"duplicate entries in {key}")

    # --- categories ---
    multi = bool(r["history"])
    counts["total"] += 1
    if multi:
        counts["multi_turn"] += 1
        if r["lang"] == "en":
            counts["multi_turn_en"] += 1
    if r["answerable"]:
        if r["lang"] == "de" and not multi:
            counts["de_single_answerable"] += 1
        if r["lang"] == "en":
            counts["en_answerable"] += 1
    else:
        counts["unanswerable"] += 1
        counts["unanswerable_" + r["lang"]] = counts.get("unanswerable_" + r["lang"], 0) + 1

    # --- content ---
    if not r["answerable"]:
        if r["sources"] or r["answers"] or r["evidence"]:
            err(rid, "unanswerable item must have empty sources/answers/evidence")
        if multi:
            warnings.append(f"{rid}: unanswerable multi-turn item")
        continue

    if not r["sources"] or not r["answers"] or not r["evidence"]:
        err(rid, "answerable item needs sources, answers and evidence")
        continue
    unknown = [s for s in r["sources"] if s not in articles]
    if unknown:
        err(rid, f"unknown source file(s) {unknown}")
        continue
    src_texts = [articles[s] for s in r["sources"]]

    if len(r["evidence"].split()) < 8:
        err(rid, f"evidence shorter than 8 words: {r['evidence']!r}")
    if not any(r["evidence"] in t for t in src_texts):
        err(rid, f"evidence not verbatim in any source: {r['evidence'][:80]!r}")

    # German answer strings must be verbatim in a source. For English
    # questions the German strings come first; trailing strings that are in no
    # source are accepted as English equivalents.
    found = [any(a in t for t in src_texts) for a in r["answers"]]
    if r["lang"] == "de":
        for a, ok in zip(r["answers"], found, strict=True):
            if not ok:
                err(rid, f"answer not verbatim in any source: {a!r}")
    else:
        if not found[0]:
            err(rid, f"first answer must be German verbatim: {r['answers'][0]!r}")
        k = found.index(False) if False in found else len(found)
        if any(found[k:]):
            err(rid, "German verbatim answers must precede English equivalents")
    if not any(a in r["evidence"] for a, ok in zip(r["answers"], found, strict=True) if ok):
        warnings.append(f"{rid}: no answer string occurs inside the evidence")

    # each listed source should contain at least one answer string
    for s in r["sources"]:
        if not any(a in articles[s] for a, ok in zip(r["answers"], found, strict=True) if ok):
            err(rid, f"source {s} contains none of the answer strings")

    # hint for source completeness (informational; needs human judgement)
    for s, t in articles.items():
        if s not in r["sources"]:
            hits = [a for a, ok in zip(r["answers"], found, strict=True) if ok and a in t]
            if hits:
                warnings.append(f"{rid}: unlisted {s} also contains {hits}")

for kind, minimum in MIN.items():
    if counts.get(kind, 0) < minimum:
        errors.append(f"count {kind} = {counts.get(kind, 0)} < required {minimum}")

used = {s for r in records if isinstance(r, dict) for s in r.get("sources", []) or []}
for s in articles:
    if s not in used:
        errors.append(f"article {s} is not used as a source by any item")

print("counts:", json.dumps(counts))
per_src = {s: sum(s in (r.get("sources") or []) for r in records) for s in articles}
print("items per source:", json.dumps(per_src))
for w in warnings:
    print("WARN ", w)
for message in errors:
    print("ERROR", message)
print("RESULT:", "PASS" if not errors else f"FAIL ({len(errors)} errors)")
sys.exit(1 if errors else 0)
