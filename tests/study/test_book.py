"""The book builds with -W from a tiny finished study, and every chapter holds its tables and
figures; a page on generated data says so and does not compare with the paper."""

import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def text(page):
    """The visible text of a page, tags removed and spaces collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))


def images(page):
    return re.findall(r"<img[^>]+src=\"([^\"]+)\"", page)


@pytest.mark.slow
def test_every_chapter_is_built_without_errors(book_html):
    html, pages = book_html
    assert (html / "index.html").is_file()
    for name, page in pages.items():
        assert "output traceback" not in page, name  # no cell failed
        if name != "api":  # the API's examples show the errors functions raise
            assert "Traceback" not in page, name


@pytest.mark.slow
def test_figures_are_on_the_pages_that_need_them(book_html):
    html, pages = book_html
    expected = {"method": 2, "data": 2, "results": 4, "errors": 2, "weights": 3, "ablations": 3}
    for name, count in expected.items():
        sources = images(pages[name])
        assert len(sources) >= count, name
        for source in sources:
            assert source.startswith("data:") or (html / "book" / source).resolve().is_file()


@pytest.mark.slow
def test_the_results_page(book_html):
    _, pages = book_html
    results = pages["results"]
    assert "admonition warning" in results  # the banner, rendered as an admonition
    assert "generated stand-in data set" in results and "not</strong> a reproduction" in results
    assert "are <strong>not</strong> compared with these" in results  # the paper's table apart
    assert ":::" not in text(results)
    table = results[results.index("Table 2, as the study measured it") :]
    for method in ("CCE", "FL", "DWFL", r"VALF \(r=0.01\)", r"VALF \(r=1\)"):
        assert re.search(rf"<td[^>]*>{method}</td>", table), method
    for column in ("AUC", "ECE", "F1 of means", "F1 (eq. 12)"):
        assert column in table
    assert not re.search(r"<th[^>]*>\s*0\s*</th>", results)  # no pandas row numbers
    words = text(results)
    assert re.search(r"a method starting with VALF is best in \d of 1 settings", words)
    assert "font-weight: bold" in results
    # the primary tests, then the pre-registered comparisons with five outcomes, counted
    assert re.search(r"\d of the 4 primary tests reject no difference", words)
    counts = re.search(
        r"Of the 4 comparisons, VALF is better in (\d)\s*, worse in (\d)\s*, equivalent "
        r"\(within ±\s*0\.02 macro-F1\) in (\d)\s*, the paper.s claimed gain is excluded in (\d) "
        r"\(of the 0 comparisons that have a claim to test\), and (\d) are inconclusive",
        words,
    )
    assert counts and sum(int(c) for c in counts.groups()) == 4
    assert "Friedman" in words and "A/A control" in words
    assert re.search(r"a comparison detects a difference of \d\.\d{3}", words)
    # beside the paper: what its numbers are, computed from its table
    assert re.search(r"in 49 of its 50 rows it equals 2PR/\(P\+R\)", words)
    assert "InceptionV3 FL 40x" in words and re.search(r"while 14 could not arise", words)


@pytest.mark.slow
def test_the_summary_sets_each_claim_beside_what_was_measured(book_html):
    _, pages = book_html
    page = pages["summary"]
    body = page[page.index("the paper claims") :]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body[: body.index("</table>")], re.S)
    assert len(rows) == 1 + 9  # the header and one row per claim of the paper
    words = text(page)
    assert "VALF has the best macro-F1 in 8 of the 10" in words and "Fig. 4" in words
    # on generated data the rows measure, but say they do not test the paper's claims
    assert words.count("not tested (not LungHist700)") >= 6
    for row in rows[1:]:
        assert 'class="reference internal"' in row  # each claim links to its evidence
    assert "What was difficult" in words and "Where we had to choose" in words


@pytest.mark.slow
def test_math_and_glue_are_rendered(book_html):
    _, pages = book_html
    assert "mathjax/tex-chtml.js" in pages["method"] and r"\log p_t" in pages["method"]
    # numbered equations, referenced by number
    assert re.findall(r'<span class="eqno">\((\d+)\)', pages["method"])[:3] == ["1", "2", "3"]
    assert 'href="#equation-eq-update"' in pages["method"]
    assert "holds 691 H&amp;E images of 1200x1600 pixels from 45 patients" in text(pages["data"])
    assert re.search(r"by a median of 0\.\d{3} \(10th to 90th percentile", text(pages["data"]))


@pytest.mark.slow
def test_the_reproducibility_page_lists_every_run(book_html):
    _, pages = book_html
    page = pages["reproducibility"]
    runs_table = page[page.index('id="every-run"') :]
    for study, count in (("tiny-main", 10), ("tiny-ablations", 2 + 4 + 1 + 1)):
        assert len(re.findall(rf"<td>{study}</td>", runs_table)) == count
    # These runs were trained without papermill: no executed notebook, so no link.
    assert 'href="../runs/' not in page
    assert "tensorflow" in page and "keras" in page and "nb-exec-table" not in page


def test_executed_notebooks_are_rendered_for_the_runs_table(tmp_path):
    import nbformat
    import pandas as pd

    from valf_study.report.build import render_run_notebooks

    run_dir = tmp_path / "runs" / "demo-run"
    run_dir.mkdir(parents=True)
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "1 + 1",
                outputs=[
                    nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)
                ],
            )
        ]
    )
    nbformat.write(notebook, run_dir / "train.ipynb")
    runs = pd.DataFrame({"run_dir": [str(run_dir), str(tmp_path / "runs" / "never-ran")]})
    assert render_run_notebooks(runs, tmp_path / "html") == 1
    assert "<pre>2</pre>" in (tmp_path / "html" / "demo-run.html").read_text()
    assert render_run_notebooks(runs, tmp_path / "html") == 0  # up to date: not redone


def _stale_after(edit, tmp_path, monkeypatch):
    """The pages a build would execute again after ``edit``, from a clean stamp."""
    from valf_study.report import book, build

    config = book.settings(results=str(tmp_path / "results"))
    build_dir = tmp_path / "_build"
    build_dir.mkdir(exist_ok=True)
    _, keys = build._drop_stale_executions(build_dir, config)
    (build_dir / build.STAMP).write_text(json.dumps(keys))
    assert build._drop_stale_executions(build_dir, config)[0] == []  # nothing changed
    edit(config)
    return {Path(page).stem for page in build._drop_stale_executions(build_dir, config)[0]}


def _copy_of(module_file, tmp_path):
    copy = tmp_path / Path(module_file).name
    copy.write_text(Path(module_file).read_text())
    return copy


def test_an_edit_to_the_losses_invalidates_the_pages_that_draw_them(tmp_path, monkeypatch):
    import valf.losses
    from valf_study.report import build

    copy = _copy_of(valf.losses.__file__, tmp_path)
    real = build._module_file
    monkeypatch.setattr(
        build, "_module_file", lambda name: copy if name == "valf.losses" else real(name)
    )
    stale = _stale_after(
        lambda config: copy.write_text(copy.read_text() + "# an edit\n"), tmp_path, monkeypatch
    )
    assert "method" in stale  # it draws the loss curves with valf.losses
    assert "intro" not in stale  # no code at all


def test_the_paper_table_results_and_settings_invalidate_the_pages_that_read_them(
    tmp_path, monkeypatch
):
    from valf_study.report import tables

    paper = _copy_of(tables.PAPER_TABLE, tmp_path)
    monkeypatch.setattr(tables, "PAPER_TABLE", paper)
    stale = _stale_after(
        lambda config: paper.write_text(paper.read_text() + "\n"), tmp_path, monkeypatch
    )
    assert "results" in stale and "intro" not in stale

    def new_results(config):
        folder = Path(config["results"]) / config["study"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "runs.csv").write_text("run_id\nx\n")

    stale = _stale_after(new_results, tmp_path, monkeypatch)
    assert {"results", "errors", "weights", "reproducibility"} <= stale


def test_a_study_with_no_complete_run_is_refused_with_what_to_do(tmp_path):
    from valf_study.report.build import build

    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "empty.yaml").write_text(
        "name: empty\ndata: {dataset: synthetic, root: data/x}\n"
        "experiments: {main: {grid: {seed: [0]}}}\n"
    )
    with pytest.raises(ValueError, match=r"no complete run yet.*valf sweep empty"):
        build(
            study="empty",
            ablations="empty",
            output=tmp_path / "out",
            results=str(tmp_path / "results"),
            runs_root=str(tmp_path / "runs"),
            studies=str(studies),
        )


@pytest.mark.slow
def test_new_results_make_the_pages_that_read_them_execute_again(book_html, monkeypatch):
    """Jupyter Book's cache keys on a page's code and Sphinx re-reads only edited sources, so
    `valf book` drops a page's cached execution (and Sphinx's memory) when what the page reads
    changes, and keeps both when nothing did."""
    import subprocess

    from jupyter_cache import get_cache

    from valf_study.report import build

    html, _ = book_html
    build_dir = html.parent
    folder = build_dir.parents[1]
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    settings = {
        "study": "tiny-main",
        "ablations": "tiny-ablations",
        "output": build_dir.parent,
        "results": str(folder / "results"),
        "runs_root": str(folder / "runs"),
        "studies": str(folder / "studies"),
    }

    def cached_pages():
        return {
            Path(r.uri).stem for r in get_cache(build_dir / ".jupyter_cache").list_cache_records()
        }

    before = cached_pages()
    assert {"method", "results", "reproducibility"} <= before
    build.build(**settings)
    assert cached_pages() == before and (build_dir / ".doctrees").is_dir()
    run = next((folder / "runs").glob("CCE-*"))
    metrics = (run / "metrics.json").read_text()
    try:
        record = json.loads(metrics)
        record["f1"] = 0.123456
        (run / "metrics.json").write_text(json.dumps(record))
        build.build(**settings)
        assert cached_pages() == set()  # every page with code reads the results
        assert not (build_dir / ".doctrees").exists()
    finally:
        (run / "metrics.json").write_text(metrics)
    assert len(calls) == 2


@pytest.mark.slow
def test_the_other_pages_of_issue_ten(book_html):
    _, pages = book_html
    errors, weights, method = (text(pages[n]) for n in ("errors", "weights", "method"))
    assert "SCC recall under VALF is about 1.00" in errors and "Calibration" in errors
    assert re.search(r"at most \d\.\d{3} with r = 0\.01.*up to \d+\.\d{3} with r = 1", weights)
    for choice in ("ConvNeXtTiny", "factor 0.1", "GridDistortion", "class_weight", "federated"):
        assert choice in method[method.index("Choices where the paper is silent") :], choice
    assert "ordinary accuracy" in method and "ovr_accuracy" in method


@pytest.mark.slow
def test_api_chapter_and_bibliography(book_html):
    _, pages = book_html
    api, bibliography = pages["api"], text(pages["bibliography"])
    for name in (
        "valf.losses.FocalLoss",
        "valf_study.stats.seed_and_image_interval",
        "valf_study.studies.comparisons.comparisons",
        "valf_study.report.build.build",
    ):
        assert f'id="{name}"' in api, name
    assert "doi:10.1109/ICCV.2017.324" in bibliography and "figshare" in bibliography
    assert 'href="bibliography.html#' in pages["method"]  # cited from the pages
