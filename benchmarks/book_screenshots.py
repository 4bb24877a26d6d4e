"""Screenshots of a built book's pages at 1280 px, whole pages, with the browser test's checks.

Usage (after ``make study``; needs Debian's ``chromium`` and ``chromium-driver``)::

    python benchmarks/book_screenshots.py _build/html benchmarks/results/screenshots \
        book/summary.html book/results.html book/real.html

Each page is opened as the browser test opens it (fold-away tables opened, MathJax typeset),
checked for tables or figures wider than their column and for broken images (printed), and saved
as ``book-<page>-1280.png`` with 128 colours (a fifth of the size, the text as sharp).
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

from tests.study import test_browser as browser_test  # the browser test's page checks, reused


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the built book (_build/html)")
    parser.add_argument("out", type=Path, help="folder for the screenshots")
    parser.add_argument("pages", nargs="*", default=["book/summary.html", "book/results.html"])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    site, server = browser_test.serve(args.html)
    driver = browser_test.start_chromium()
    try:
        for page in args.pages:
            browser_test.open_page(driver, f"{site}/{page}")
            overflows = driver.execute_script(browser_test.OVERFLOWS)
            broken = driver.execute_script(browser_test.BROKEN_IMAGES)
            path = args.out / f"book-{Path(page).stem}-1280.png"
            browser_test.screenshot(driver, path)
            image = Image.open(path).convert("RGB")
            image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
            print(page, "overflows:", json.dumps(overflows), "broken images:", broken, "->", path)
    finally:
        driver.quit()
        server.shutdown()


if __name__ == "__main__":
    main()
