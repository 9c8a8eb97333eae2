"""The Articles tab in a real browser (Chromium through Playwright): the news fixture served by
``ui.launch``, the outlet filter chosen by clicking, the table re-rendered by the server."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import free_port
from tests.news_corpus import NEWS_DIR
from tests.test_ui_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.browser, pytest.mark.slow]

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (requirements/test.txt)")
expect = playwright_api.expect


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from rag.api import Pipeline
    from rag.settings import Settings
    from ui import launch

    base = tmp_path_factory.mktemp("ui-news")
    settings = Settings(
        store=base / "store",
        cache_dir=base / "cache",
        embedder="fake",
        generator="extractive",
        host="127.0.0.1",
        port=free_port(),
    )
    pipeline = Pipeline(settings)
    pipeline.index([NEWS_DIR])  # not empty: launch indexes nothing else
    app = launch(pipeline, settings, block=False)
    try:
        yield f"http://127.0.0.1:{settings.port}/"
    finally:
        app.close()
        pipeline.close()


def test_outlet_filter_and_story_block_in_the_browser(url: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install chromium")
    home = tmp_path_factory.mktemp("chromium-home")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env={**os.environ, "HOME": str(home)}
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 960})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(url, wait_until="load")
            page.get_by_role("tab", name="Articles").click()
            table = page.locator("#rag-articles")
            expect(table).to_contain_text("13 articles indexed")
            expect(table.locator("tr.art")).to_have_count(13)
            expect(table.locator("tr.art-story")).to_contain_text("2 articles: Elbtal Nachrichten")
            expect(table.locator("tr.art").first).to_contain_text("Radio Nordost")  # newest first
            page.locator("#rag-article-outlets input").click()
            page.get_by_role("option", name="Radio Nordost").click()
            expect(table).to_contain_text("Showing 3 from Radio Nordost")
            expect(table.locator("tr.art")).to_have_count(3)
            expect(table.locator("tr.art-story")).to_have_count(0)
            assert not errors, errors
        finally:
            browser.close()
