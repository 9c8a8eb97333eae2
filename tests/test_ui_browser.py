"""The web chat in a real browser: Playwright drives Debian's Chromium against ``ui.launch``.

One server per module (launched like ``rag chat`` does: it indexes the sample articles into
the empty store), plus a planted article full of markup. Every test opens its own browser
context, so each starts with an empty conversation; the upload test removes what it adds.

The default ("local") generator is a scripted stand-in for the LLM that streams the best
evidence sentence in small, slightly delayed pieces, so streaming is observable; the
abstention test switches the page to the real extractive generator.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE_SOURCES, free_port
from tests.fakes import ScriptedGenerator

pytestmark = [pytest.mark.browser, pytest.mark.slow]

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="pip install playwright==1.65.2 (requirements/test.txt)"
)
expect = playwright_api.expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = ROOT / "tests" / "artifacts"
SCREENSHOT = ROOT / "docs" / "screenshot-chat.png"

XSS_NAME = "zz_stadtrat.txt"
XSS_TITLE = "Stadtrat <script>window.__xss = 1</script> beschließt neue Fahrradwege"
XSS_ARTICLE = f"""{XSS_TITLE}

Der Stadtrat von Beispielstadt hat am Montag den Bau neuer Fahrradwege beschlossen <img src=x onerror="window.__xss = \
2">. Die Fahrradwege kosten nach Angaben der Verwaltung 4,2 Millionen Euro <b onmouseover="window.__xss = \
3">insgesamt</b>.

Die Bauarbeiten sollen im Frühjahr beginnen und zwei Jahre dauern. Anwohner hatten seit Langem sichere Radwege \
gefordert.
"""

UPLOAD_NAME = "bibliothek_lindenau.txt"
UPLOAD_ARTICLE = """Neue Stadtbibliothek in Lindenau eröffnet

Die Stadtbibliothek Lindenau hat am Samstag ihren Neubau am Marktplatz eröffnet. Der Neubau bietet Platz für 120.000 \
Bücher und einen Lesesaal mit 80 Arbeitsplätzen.

Die Baukosten lagen bei 18 Millionen Euro. Die Bibliothek ist künftig auch sonntags geöffnet.
"""


class SlowEcho(ScriptedGenerator):
    """The LLM stand-in: answers with the best evidence sentence and its marker, streamed slowly."""

    def __init__(self, delay: float = 0.06) -> None:
        super().__init__(self._reply, name="scripted-echo")
        self.delay = delay

    @staticmethod
    def _reply(request) -> str:
        if not request.extractive.sentences:  # the follow-up rewrite prompt: fall back to carrying the words
            return ""
        n, text = request.extractive.sentences[0]
        return f"{text.rstrip().rstrip('.')} [{n}]."

    def generate(self, request):
        for piece in super().generate(request):
            time.sleep(self.delay)
            yield piece


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    from rag.api import Pipeline
    from rag.settings import Settings
    from ui import launch

    base = tmp_path_factory.mktemp("ui-server")
    settings = Settings(
        store=base / "store",
        cache_dir=base / "cache",
        embedder="fake",
        generator="local",
        host="127.0.0.1",
        port=free_port(),
        auth_user=None,
        auth_password=None,
        openai_base_url=f"http://127.0.0.1:{free_port()}/v1",
        request_timeout=5,
    )
    pipeline = Pipeline(settings, generator=SlowEcho())
    started = time.perf_counter()
    app = launch(pipeline, settings, block=False)
    assert sorted(a.source for a in pipeline.sources()) == SAMPLE_SOURCES  # the empty store got the samples
    (base / "planted").mkdir()
    (base / "planted" / XSS_NAME).write_text(XSS_ARTICLE, encoding="utf-8")
    pipeline.index([base / "planted" / XSS_NAME])
    print(f"\nui server up in {time.perf_counter() - started:.1f} s")
    try:
        yield {"url": f"http://127.0.0.1:{settings.port}/", "pipeline": pipeline, "base": base}
    finally:
        app.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install chromium")
    home = tmp_path_factory.mktemp("chromium-home")  # Chromium writes into $HOME even with a profile dir
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env={**os.environ, "HOME": str(home)}
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, server: dict):
    context = browser.new_context(viewport={"width": 1440, "height": 960}, device_scale_factor=1)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server["url"], wait_until="load")
    expect(page.locator("#rag-question textarea")).to_be_visible(timeout=30_000)
    expect(page.locator("#rag-sources .rag-sources")).to_be_visible()
    yield page
    context.close()
    assert not errors, errors


# ----- helpers
def finals(page):
    """The finished assistant messages (answer, abstention or error)."""
    return page.locator("#rag-chat .rag-answer, #rag-chat .rag-abstained, #rag-chat .rag-error")


def ask(page, question: str, timeout: float = 30_000):
    """Type and send a question; returns the locator of its finished reply."""
    before = finals(page).count()
    page.locator("#rag-question textarea").fill(question)
    page.locator("#rag-question textarea").press("Enter")
    expect(finals(page)).to_have_count(before + 1, timeout=timeout)
    return finals(page).nth(before)


def choose_generator(page, label: str) -> None:
    page.locator("#rag-settings button.label-wrap").click()
    page.locator("#rag-generator input").click()
    page.get_by_role("option", name=label).click()
    expect(page.locator("#rag-generator input")).to_have_value(label)


def screenshot(page, name: str, *also: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))
    for path in also:
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path))


# ----- tests
def test_streamed_answer_with_citations_and_highlighted_passage(page) -> None:
    # Record every state the draft passes through: proof that the answer arrives in pieces.
    page.evaluate("""() => {
        window.__drafts = [];
        new MutationObserver(() => {
            document.querySelectorAll('#rag-chat .rag-draft:not(.rag-pending)').forEach((d) => {
                const t = d.textContent; if (window.__drafts.at(-1) !== t) window.__drafts.push(t);
            });
        }).observe(document.querySelector('#rag-chat'), {subtree: true, childList: true, characterData: true});
    }""")
    reply = ask(page, "Wie viele Raketen kann das U-Boot tragen?")
    expect(reply).to_contain_text("zehn Raketen")
    drafts = page.evaluate("window.__drafts")
    assert len(drafts) >= 3, drafts  # several growing drafts before the final answer
    assert all(len(a) <= len(b) for a, b in zip(drafts, drafts[1:], strict=False)), drafts

    link = reply.locator("a.cite").first
    expect(link).to_be_visible()
    href = link.get_attribute("href")
    assert href.startswith("#src-1-"), href
    target = page.locator(href)
    target.evaluate("d => { d.open = false; d.closest('#rag-sources-col').scrollTop = 0; }")  # start collapsed
    link.click()
    expect(target).to_have_attribute("open", "")
    mark = target.locator("mark")
    expect(mark).to_have_text("Das Gefährt könne bis zu zehn Raketen mit Nuklearsprengköpfen tragen und abfeuern.")
    expect(mark).to_be_in_viewport()
    expect(target.locator(".src-title")).to_contain_text("Freundschaft zwischen Kim und Putin")
    expect(target.locator(".src-file")).to_have_text("004_7f32bc9d79f56e77.txt")
    # The other retrieved passages are listed too, collapsed.
    others = page.locator("#turn-1 details.src:not(.cited)")
    assert others.count() >= 1
    expect(others.first).not_to_have_attribute("open", "")
    assert page.url.endswith("/")  # the click stayed in the page (no navigation, no new tab)
    page.wait_for_timeout(1700)  # let the highlight flash fade for the screenshot
    screenshot(page, "chat.png", SCREENSHOT)


def test_follow_up_uses_the_earlier_turn(page) -> None:
    first = ask(page, "Wie viele Raketen kann das U-Boot tragen?")
    expect(first.locator("a.cite")).to_have_count(1)
    # The page's settings apply to the next question: two passages, with their retrieval scores.
    page.locator("#rag-settings button.label-wrap").click()
    # The slider commits the typed number on blur; the app reports what the next question will use.
    # A number typed while the accordion still opens can be lost (seen once in CI): type again,
    # as a user would, until the app reports it (bounded: 5 tries).
    applied = page.locator("#rag-applied .rag-applied")
    for attempt in range(5):
        page.locator("#rag-top-k input[type=number]").fill("2")
        page.locator("#rag-top-k input[type=number]").press("Tab")
        try:
            expect(applied).to_have_attribute("data-top-k", "2", timeout=3000)
            break
        except AssertionError:
            if attempt == 4:
                raise
    page.locator("#rag-scores input").check()
    expect(page.locator("#rag-applied")).to_contain_text("scores shown")
    expect(page.locator("#turn-1 .src-score").first).to_contain_text("score ")  # shown at once, too
    second = ask(page, "Wo soll es patrouillieren?")
    expect(page.locator("#turn-2 details.src")).to_have_count(2)
    expect(page.locator("#turn-2 .src-score")).to_have_count(2)
    expect(second).to_contain_text("zwischen Korea und Japan")
    # The follow-up was searched together with the earlier question (the history reached the pipeline).
    expect(page.locator("#turn-2 .turn-rewrite")).to_have_text(
        "Searched as: Wie viele Raketen kann das U-Boot tragen? Wo soll es patrouillieren?"
    )
    expect(page.locator("#turn-2")).to_be_visible()
    expect(page.locator("#turn-1")).to_be_hidden()
    # A marker in the first answer still opens the first answer's sources.
    first.locator("a.cite").first.click()
    expect(page.locator("#turn-1")).to_be_visible()
    expect(page.locator("#turn-2")).to_be_hidden()
    expect(page.locator("#turn-1 mark").first).to_contain_text("zehn Raketen")
    screenshot(page, "follow-up.png")


def test_abstention_looks_different(page) -> None:
    choose_generator(page, "Extractive (no LLM: best matching sentences)")
    reply = ask(page, "Wie ist das Wetter auf dem Mars?")
    expect(reply).to_have_class("rag-abstained abstained")
    expect(reply).to_contain_text("No answer in the articles")
    expect(reply).to_contain_text("Dazu enthalten die Artikel keine Angabe.")
    expect(reply.locator("a.cite")).to_have_count(0)
    colors = reply.evaluate("e => getComputedStyle(e).borderLeftColor + ' ' + getComputedStyle(e).backgroundColor")
    assert "rgb(217, 119, 6)" in colors, colors  # the amber notice, not a plain message
    expect(page.locator("#turn-1 .src-empty")).to_have_text("No passage supports an answer.")
    # In a new conversation, an answerable question with the same generator gets a normal, cited answer.
    page.locator("#rag-new").click()
    expect(finals(page)).to_have_count(0)
    expect(page.locator("#rag-sources")).to_contain_text("Ask a question")
    answered = ask(page, "Wie viele Raketen kann das U-Boot tragen?")
    expect(answered).to_have_class("rag-answer")
    screenshot(page, "abstention.png")


def test_markup_in_an_article_renders_as_text(page) -> None:
    # Watch the chat while the answer streams: the draft quotes the article's markup verbatim.
    page.evaluate("""() => {
        window.__drafts = []; window.__injected = [];
        new MutationObserver((records) => {
            for (const r of records) for (const n of r.addedNodes) {
                if (n.nodeType !== 1) continue;
                for (const e of [n, ...n.querySelectorAll('*')])
                    if (['IMG', 'SCRIPT', 'B', 'SVG', 'IFRAME'].includes(e.tagName))\
 window.__injected.push(e.outerHTML);
            }
            document.querySelectorAll('#rag-chat .rag-draft').forEach((d) => window.__drafts.push(d.textContent));
        }).observe(document.querySelector('#rag-chat'), {subtree: true, childList: true, characterData: true});
    }""")
    reply = ask(page, "Wie viel kosten die neuen Fahrradwege in Beispielstadt?")
    expect(reply).to_contain_text("Fahrradwege")
    assert any('<img src=x onerror="window.__xss = 2">' in d for d in page.evaluate("window.__drafts")), (
        "the streamed draft should show the article's markup as text"
    )
    assert page.evaluate("window.__injected") == []
    panel = page.locator("#rag-sources")
    expect(panel.locator("details.cited .src-title").first).to_have_text(XSS_TITLE)
    expect(panel.locator("details.cited").first).to_contain_text('<img src=x onerror="window.__xss = 2">')
    expect(panel.locator("details.cited").first).to_contain_text('<b onmouseover="window.__xss = 3">insgesamt</b>')
    reply.hover()
    panel.locator("mark").first.hover()
    page.get_by_role("tab", name="Articles").click()
    expect(page.locator("#rag-articles")).to_contain_text(XSS_TITLE)
    page.wait_for_timeout(300)
    assert page.evaluate("window.__xss") is None
    injected = page.locator(
        "#rag-chat img[src='x'], #rag-sources img, #rag-sources script, #rag-articles script, "
        "#rag-chat b[onmouseover], #rag-sources b, #rag-articles img"
    )
    expect(injected).to_have_count(0)


def test_upload_answer_and_remove(page, server: dict, tmp_path: Path) -> None:
    upload = tmp_path / UPLOAD_NAME
    upload.write_text(UPLOAD_ARTICLE, encoding="utf-8")
    page.get_by_role("tab", name="Articles").click()
    expect(page.locator("#rag-articles")).to_contain_text(f"{len(SAMPLE_SOURCES) + 1} articles indexed")

    page.locator("#rag-upload input[type=file]").set_input_files(str(upload))
    status = page.locator("#rag-status")
    expect(status.locator(".status-ok")).to_contain_text(f"{UPLOAD_NAME}: indexed", timeout=30_000)
    expect(page.locator("#rag-articles")).to_contain_text("Neue Stadtbibliothek in Lindenau eröffnet")
    assert UPLOAD_NAME in {a.source for a in server["pipeline"].sources()}
    assert not _uploads_left(UPLOAD_NAME)  # Gradio's temporary copy is gone

    page.get_by_role("tab", name="Chat").click()
    reply = ask(page, "Für wie viele Bücher bietet der Neubau der Stadtbibliothek Platz?")
    expect(reply).to_contain_text("120.000 Bücher")
    expect(page.locator("#turn-1 details.cited .src-file").first).to_have_text(UPLOAD_NAME)

    page.get_by_role("tab", name="Articles").click()
    page.locator("#rag-remove-choice input").click()
    page.get_by_role("option", name=f"Neue Stadtbibliothek in Lindenau eröffnet ({UPLOAD_NAME})").click()
    page.locator("#rag-remove").click()
    expect(status.locator(".status-ok")).to_have_text(f"Removed {UPLOAD_NAME}.")
    expect(page.locator("#rag-articles")).not_to_contain_text("Stadtbibliothek")
    assert UPLOAD_NAME not in {a.source for a in server["pipeline"].sources()}

    # Another file type is refused with a message (the pipeline refuses it too: see test_ui_handlers).
    wrong = tmp_path / "notes.pdf"
    wrong.write_bytes(b"%PDF-1.4 not an article")
    page.locator("#rag-upload input[type=file]").set_input_files(str(wrong))
    expect(page.get_by_text("Invalid file type")).to_be_visible()
    assert "notes.pdf" not in {a.source for a in server["pipeline"].sources()}
    screenshot(page, "articles.png")


def test_unavailable_generator_is_a_message_in_the_chat(page) -> None:
    choose_generator(page, "OpenAI-compatible server")
    reply = ask(page, "Wann treffen sich Kim und Putin?")
    expect(reply).to_have_class("rag-error")
    expect(reply).to_contain_text("Cannot reach the LLM server")
    expect(page.locator("#rag-chat")).not_to_contain_text("Traceback")


def _uploads_left(*names: str) -> list[Path]:
    from gradio import route_utils, utils

    roots = {Path(utils.get_upload_folder()), Path(route_utils.DEFAULT_TEMP_DIR)}
    return [p for root in roots if root.exists() for name in names for p in root.rglob(name)]
