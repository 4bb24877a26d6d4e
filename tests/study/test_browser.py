"""The built book in a real browser (headless Chromium through Selenium) at 1280 px: on every
page no image is broken and no table or figure runs past its column; the equations are typeset
by the local MathJax; the summary's links resolve; the search box finds a word of the results
page offline; the results table has a row per backbone and method with AUC and ECE, both
readings of VALF are compared with FL and CCE, the errors page has its reliability figure and
Fig. 4 check, the method page its choices; a screenshot of each page is kept (the whole page,
in ``VALF_SCREENSHOTS`` when set).

Needs Debian's ``chromium`` and ``chromium-driver``. Without them the test is skipped, unless
``VALF_REQUIRE_BROWSER`` is set (CI sets it, after installing them), when it fails.
"""

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    message = "headless Chromium needs Debian's chromium and chromium-driver packages"
    if os.environ.get("VALF_REQUIRE_BROWSER"):
        raise RuntimeError(message + " (VALF_REQUIRE_BROWSER is set)")
    pytest.skip(message, allow_module_level=True)

PAGES = (
    "index.html",
    "book/summary.html",
    "book/method.html",
    "book/data.html",
    "book/results.html",
    "book/real.html",
    "book/errors.html",
    "book/weights.html",
    "book/ablations.html",
    "book/reproducibility.html",
)
#: Pages that show figures (the others may have none on a tiny study).
FIGURE_PAGES = ("method", "data", "results", "errors", "weights", "ablations")


def serve(html):
    """A local HTTP server of the built book (search needs HTTP); its address and the server."""
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


def start_chromium():
    """Headless Chromium at 1280 px, driven by Selenium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    return driver


@pytest.fixture(scope="module")
def site(book_html):
    html, _ = book_html
    address, server = serve(html)
    yield address
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    driver = start_chromium()
    yield driver
    driver.quit()


def open_page(browser, url):
    browser.get(url)
    # Fold-away outputs (a long table under its figure) opened, so that they are checked too.
    browser.execute_script("""
        document.querySelectorAll('details').forEach(d => { d.open = true; });
        document.querySelectorAll('.toggle-hidden').forEach(
            e => e.classList.remove('toggle-hidden'));""")
    # Wait for MathJax to typeset, where the page loads it.
    browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
            MathJax.startup.promise.then(() => done(true), () => done(false));
        } else { done(null); }""")


BROKEN_IMAGES = """return Array.from(document.images)
    .filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.src);"""


# Every table and figure of the article, and every output box, with how far it reaches past the
# column it sits in (0 when it fits): an element wider than its container, or a container that
# scrolls sideways.
OVERFLOWS = """
const column = document.querySelector('.bd-article') || document.querySelector('main');
const limit = column.getBoundingClientRect().right + 1;
const found = [];
for (const el of column.querySelectorAll('table, img, .cell_output, .output, svg')) {
    const box = el.getBoundingClientRect();
    const sideways = el.scrollWidth - el.clientWidth;
    if (box.right > limit || (el.clientWidth > 0 && sideways > 1)) {
        found.push(`${el.tagName}.${el.className}: right ${Math.round(box.right)} > ` +
                   `${Math.round(limit)} or scrolls ${sideways}px: ` +
                   el.innerText.slice(0, 60));
    }
}
return found;"""


def screenshot(browser, path):
    """The whole page at the window's width (the window grown to the page's height)."""
    width = browser.get_window_size()["width"]
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, min(max(height, 800), 12000))
    try:
        return browser.save_screenshot(str(path))
    finally:
        browser.set_window_size(width, 1600)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_pages_load_fit_and_have_no_broken_image(browser, site, page, tmp_path_factory):
    open_page(browser, f"{site}/{page}")
    assert "404" not in browser.title
    assert browser.execute_script(BROKEN_IMAGES) == []
    if page.removeprefix("book/").removesuffix(".html") in FIGURE_PAGES:
        assert browser.execute_script("return document.images.length") > 0
    assert browser.execute_script(OVERFLOWS) == [], page
    folder = Path(os.environ.get("VALF_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / (page.replace("/", "-").replace(".html", ".png"))
    assert screenshot(browser, shot) and shot.stat().st_size > 10_000


@pytest.mark.slow
def test_the_summary_links_resolve(browser, site):
    open_page(browser, f"{site}/book/summary.html")
    links = browser.execute_script("""
        const table = Array.from(document.querySelectorAll('table'))
            .find(t => t.innerText.includes('the paper claims'));
        return Array.from(table.querySelectorAll('a')).map(a => a.href);""")
    rows = browser.execute_script("""
        const table = Array.from(document.querySelectorAll('table'))
            .find(t => t.innerText.includes('the paper claims'));
        return table.querySelectorAll('tbody tr').length;""")
    assert rows >= 9 and len(links) >= rows  # one claim a row, each with its evidence
    for link in sorted(set(links)):
        assert link.startswith(site), link  # inside the book
        browser.get(link)
        assert "404" not in browser.title, link
        anchor = link.partition("#")[2]
        if anchor:
            assert browser.execute_script(
                "return document.getElementById(arguments[0]) !== null", anchor
            ), link


@pytest.mark.slow
def test_search_finds_a_word_of_the_results_page_offline(browser, site):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{site}/search.html?q=Friedman")
    WebDriverWait(browser, 30).until(
        lambda b: (
            b.execute_script(
                "return document.querySelectorAll('#search-results li, ul.search li').length"
            )
            > 0
        )
    )
    found = browser.execute_script(
        "return Array.from(document.querySelectorAll('#search-results li, ul.search li'))"
        ".map(li => li.innerText)"
    )
    assert any("Results" in text for text in found), found


@pytest.mark.slow
def test_equations_are_typeset_offline(browser, site):
    open_page(browser, f"{site}/book/method.html")
    typeset = browser.execute_script("return document.querySelectorAll('mjx-container').length")
    errors = browser.execute_script("return document.querySelectorAll('mjx-merror').length")
    assert typeset >= 2 and errors == 0
    # served by the book itself, not a CDN
    sources = browser.execute_script(
        "return Array.from(document.scripts).map(s => s.src).filter(s => s.includes('mathjax'))"
    )
    assert sources and all(s.startswith(site) for s in sources)


@pytest.mark.slow
def test_the_results_table_has_a_row_per_backbone_and_loss(browser, site, book_html):
    open_page(browser, f"{site}/book/results.html")
    # Table 2 comes in two parts: the paper's four metrics, then the probability-based ones.
    tables = browser.execute_script("""
        return Array.from(document.querySelectorAll('table')).map(t => ({
            head: t.querySelector('thead') ? t.querySelector('thead').innerText : '',
            rows: Array.from(t.querySelectorAll('tbody tr')).map(r => r.innerText)}));""")
    paper = [t for t in tables if "Precision" in t["head"] and "F1 of means" in t["head"]]
    probability = [t for t in tables if "AUC" in t["head"] and "ECE" in t["head"]]
    assert len(paper) == 1 and len(probability) == 1
    assert "F1 (eq. 12)" in probability[0]["head"]
    for table in (paper[0], probability[0]):
        rows = table["rows"]
        assert len(rows) == 5  # SmallCNN x (CCE, FL, DWFL, VALF at r = 0.01 and r = 1) x 20x
        for method in ("CCE", "FL", "DWFL", "VALF (r=0.01)", "VALF (r=1)"):
            assert sum(f"\t{method}\t" in f"\t{row}\t" for row in rows) == 1, method


def _text(browser):
    return browser.execute_script("return document.body.innerText")


@pytest.mark.slow
def test_both_readings_of_valf_are_compared_with_fl_and_cce(browser, site):
    open_page(browser, f"{site}/book/results.html")
    text = _text(browser)
    for reading in ("VALF (r=0.01)", "VALF (r=1)"):
        for comparator in ("FL", "CCE"):
            assert f"{reading} − {comparator}" in text or (reading in text and comparator in text)
    assert "Holm" in text and "a comparison detects a difference of" in text


@pytest.mark.slow
def test_errors_page_has_calibration_and_the_fig4_check(browser, site):
    open_page(browser, f"{site}/book/errors.html")
    text = _text(browser)
    assert "SCC recall under VALF is about 1.00" in text and "Calibration" in text
    assert browser.execute_script("return document.images.length") >= 2


@pytest.mark.slow
def test_the_method_page_states_the_choices(browser, site):
    open_page(browser, f"{site}/book/method.html")
    text = _text(browser)
    for choice in ("ConvNeXtTiny", "ReduceLROnPlateau", "GridDistortion", "DWFL", "WCCE"):
        assert choice in text[text.index("Choices where the paper is silent") :], choice
