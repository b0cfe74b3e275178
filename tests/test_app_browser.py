"""The Space in a real browser: Debian's chromium driven by Playwright (never `playwright install`).

Types a sentence with an HTML payload, checks the highlighted spans and their types (by the legend's colours),
that the payload is shown as text and runs no script, then opens the results tab and checks the tables. Screenshots
go to $SPACE_SCREENSHOT_DIR when set (CI artifacts), else to the test's tmp directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from space_models import build_lookup_model, write_validation_results

import app
from trainer.inference.tagger import NerTagger

CHROMIUM = "/usr/bin/chromium"
# No network beyond the local server, no background services, no sandbox (root in a container).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAYLOAD = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    d = build_lookup_model(str(tmp_path_factory.mktemp("browser") / "ner-model"))
    tagger = NerTagger.from_pretrained(d)
    write_validation_results(tagger, d)
    # As a training run records it: the data named by where its files lay on the training machine.
    results = json.loads(Path(d, "eval_results.json").read_text())
    results["validation"]["dataset"] = f"CoNLL files in {d}/data [validation: {d}/data/eng.testa]"
    Path(d, "eval_results.json").write_text(json.dumps(results))
    demo = app.build_demo(d, tagger)
    demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    yield demo.local_url, d
    demo.close()


@pytest.fixture
def page(page_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        page.dialogs = []  # alert()/confirm() would mean injected script ran
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
        page.goto(page_url[0])
        page.model_dir = page_url[1]
        yield page
        browser.close()


def screenshot(page, name, tmp_path):
    out = os.environ.get("SPACE_SCREENSHOT_DIR") or str(tmp_path)
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, name)
    page.screenshot(path=path, full_page=True)
    assert os.path.getsize(path) > 10_000
    return path


def test_highlight_payload_and_results_tab(page, tmp_path):
    text = f"John Zwingmann flew to Paris. {PAYLOAD} alert('x')"
    page.locator("#input-text textarea").fill(text)
    page.locator("#run").click()

    spans = page.locator("#highlight .token.highlighted")
    spans.nth(1).wait_for()
    assert spans.all_inner_texts() == ["John Zwingmann", "Paris"]
    # Each span's colour is the legend colour of its type.
    legend = {
        b.get_attribute("style"): b.inner_text()
        for b in page.locator("#highlight [data-testid='highlighted-text:category-legend'] button").all()
    }
    assert sorted(legend.values()) == ["LOC", "MISC", "ORG", "PER"]
    types = [legend[s.get_attribute("style").replace(" color: black;", "")] for s in spans.all()]
    assert types == ["PER", "LOC"]

    # The HTML is shown as text and nothing in it ran.
    assert PAYLOAD in page.locator("#highlight").inner_text()
    assert page.locator("#highlight img, #highlight script").count() == 0
    assert page.evaluate("window.__xss") is None and page.dialogs == []

    cells = page.locator("#entity-table [role=gridcell]")
    page.wait_for_function("document.querySelectorAll('#entity-table [role=gridcell]').length >= 10")
    assert cells.all_inner_texts()[:5] == ["PER", "John Zwingmann", "1", "0", "14"]
    shot = screenshot(page, "space-try-it.png", tmp_path)

    page.get_by_role("tab", name="Validation results").click()
    page.locator("#summary").get_by_text("Overall").wait_for()
    per_entity = page.locator("#per-entity [role=gridcell]")
    per_entity.first.wait_for()
    rows = per_entity.all_inner_texts()
    assert rows[:5] == ["LOC", "0.6", "1", "0.75", "3"] and "PER" in rows
    errors = page.locator("#errors [role=gridcell]").all_inner_texts()
    assert "wrong type" in errors and "false negative" in errors
    page.locator("#chart").get_by_text("precision").first.wait_for()
    # Grouped by entity type: three bars (precision, recall, F1) per type, the types in order along the axis.
    bars = page.locator("#chart rect.bar")
    assert [b.get_attribute("data-type") for b in bars.all()] == [
        t for t in ("LOC", "MISC", "ORG", "PER") for _ in "prf"
    ]
    assert [b.get_attribute("data-metric") for b in bars.all()[:3]] == ["precision", "recall", "f1"]
    screenshot(page, "space-results.png", tmp_path)
    assert os.path.exists(shot)


def broken_words(page, selector: str) -> list[str]:
    """The words of the element's text that the browser laid out over more than one line."""
    return page.evaluate(
        """sel => {
            const out = [], root = document.querySelector(sel);
            const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
            for (let node = walk.nextNode(); node; node = walk.nextNode()) {
                for (const m of node.textContent.matchAll(/\\S+/g)) {
                    const range = document.createRange();
                    range.setStart(node, m.index);
                    range.setEnd(node, m.index + m[0].length);
                    const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
                    if (tops.size > 1) out.push(m[0]);
                }
            }
            return out;
        }""",
        selector,
    )


def test_words_are_never_broken_and_no_local_path_reaches_a_visitor(page, tmp_path):
    sentence = (
        "John Smith flew to Paris for the county championship, hanging out with Google engineers in Berlin while "
        "Reuters reported the extraordinarily long internationalization talks."
    )
    text = " ".join([sentence] * 4)
    page.set_viewport_size({"width": 900, "height": 900})
    page.locator("#input-text textarea").fill(text)
    page.locator("#run").click()
    page.locator("#highlight .token.highlighted").nth(8).wait_for()
    assert page.locator("#highlight").inner_text().count("\n") > 4  # it does wrap over several lines
    assert broken_words(page, "#highlight") == []
    seen = page.locator("body").inner_text()
    page.get_by_role("tab", name="Validation results").click()
    page.locator("#summary").get_by_text("Overall").wait_for()
    seen += page.locator("body").inner_text()
    assert page.model_dir not in seen and "/tmp" not in seen
    assert "ner-model" in seen and "eng.testa" in seen  # named by name only
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):  # the README's picture: docs/space.png
        write_docs_screenshot(page)


def write_docs_screenshot(page) -> None:
    from PIL import Image

    page.get_by_role("tab", name="Try it").click()
    page.set_viewport_size({"width": 1100, "height": 760})
    page.locator("#input-text textarea").fill(
        "John Smith of Reuters reported from Paris that Google would open an office in Berlin."
    )
    page.locator("#run").click()
    page.wait_for_function("document.querySelector('#highlight').innerText.includes('office')")
    page.wait_for_timeout(500)
    path = Path(__file__).resolve().parents[1] / "docs" / "space.png"
    page.screenshot(path=str(path))
    Image.open(path).convert("RGB").quantize(colors=64).save(path, optimize=True)
