"""``valf book``: collect the results, execute the pages that need it, build the book with -W.

Analysis pages are executed through Jupyter Book's cache, which keys on a page's code alone.
A page also reads the results tables, the paper's table, ``book/study.yml`` and whatever the
``valf`` modules it imports compute, so :func:`build` keys each page on all of that
(:func:`page_inputs`): the page's source, the files of every ``valf`` module it imports
(directly or through other modules), and, for pages that load results, the book's settings,
the results and study files of the studies shown and the paper's table. A page whose key
changed loses its cached execution and is executed again; the others are read from the cache.

MathJax is served with the book from the pinned ``django-static-mathjax`` wheel (MathJax 3.2.2's
``es5`` folder), so equations render offline and no Node.js is needed.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import yaml

from valf_study import project
from valf_study.files import write_atomic
from valf_study.report.book import ENVIRONMENT, settings, settings_file
from valf_study.run.rundir import RunDirectory

__all__ = ["build", "install_mathjax", "page_inputs", "pages", "render_run_notebooks"]

_CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)
_MATHJAX_PARTS = ("tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions")
STAMP = ".valf-page-inputs.json"


def pages(root=None):
    """The book's pages (``_toc.yml`` of the project), as source paths."""
    root = project.root() if root is None else root
    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    files = [toc["root"]] + [entry["file"] for entry in _toc_entries(toc)]
    return [Path(root) / f"{name}.md" for name in files]


def _toc_entries(toc):
    yield from toc.get("chapters", [])
    for part in toc.get("parts", []):
        yield from part.get("chapters", [])


#: The packages whose modules a page's execution depends on: the library and the study.
PACKAGES = ("valf", "valf_study")


def _imports(text, packages=PACKAGES):
    """Names of the modules of ``packages`` that Python source ``text`` imports, anywhere in
    it."""
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {
        name
        for name in found
        if any(name == package or name.startswith(package + ".") for package in packages)
    }


def _module_file(name):
    """The source file of module ``name`` of :data:`PACKAGES`, found from its package's folder
    without importing the module (``importlib.util.find_spec`` would import its parents); None
    for a name that is not a module (a class imported from one)."""
    top, *rest = name.split(".")
    spec = importlib.util.find_spec(top)  # the top package only: valf and valf_study load light
    base = Path(next(iter(spec.submodule_search_locations))).joinpath(*rest)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_closure(names):
    """The files of the modules ``names`` and of every ``valf`` module they import, with the
    packages that hold them, transitively."""
    files, queue = {}, list(names)
    while queue:
        name = queue.pop()
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b too
            module = ".".join(parts[:depth])
            if module in files:
                continue
            path = _module_file(module)
            if path is None or path.suffix != ".py":
                continue  # a name imported from a module, not a module
            files[module] = path
            queue.extend(_imports(path.read_text(encoding="utf-8")))
    return files


def _page_code(page):
    cells = _CODE_CELL.findall(page.read_text(encoding="utf-8"))
    # Cell options (":tags: ..."), IPython magics and shell escapes are not Python.
    return "\n".join(
        line
        for cell in cells
        for line in cell.splitlines()
        if not line.lstrip().startswith((":", "%", "!"))
    )


def page_inputs(page, config):
    """Every file ``page`` reads, as a dict of name -> path (see the module's docstring)."""
    inputs = {"page": page}
    modules = module_closure(_imports(_page_code(page)))
    inputs.update({f"module {name}": path for name, path in modules.items()})
    if "valf_study.report.book" in modules:  # the page loads results
        root = project.root()
        inputs["book settings"] = settings_file()
        for name in _shown(config):
            folder = root / config["results"] / name
            inputs.update({f"results {name}/{p.name}": p for p in sorted(folder.glob("*"))})
            inputs[f"study {name}"] = root / config["studies"] / f"{name}.yaml"
    if "valf_study.report.tables" in modules:
        from valf_study.report.tables import FIG4_CLAIMS, PAPER_TABLE
        from valf_study.studies.paper import PAPER_CLAIMS

        inputs["paper table"] = PAPER_TABLE
        inputs["paper claims"] = PAPER_CLAIMS
        inputs["paper fig4 claims"] = FIG4_CLAIMS
    # Pages that quote recorded benchmarks (the coverage simulation, the loss overhead).
    if "benchmarks" in _page_code(page) or ("valf_study.report.summary" in modules):
        folder = project.root() / "benchmarks" / "results"
        inputs.update({f"benchmark {p.name}": p for p in sorted(folder.glob("*.json"))})
    return inputs


def _shown(config):
    """The names of the studies the book shows: main, ablations (unless ``none``), the
    cross-validated protocol and the studies on real images when their study files exist."""
    names = [config["study"]] + ([config["ablations"]] if config.get("ablations") else [])
    studies = project.root() / config["studies"]
    optional = ([config["cv"]] if config.get("cv") else []) + list(config.get("real") or [])
    names += [name for name in optional if (studies / f"{name}.yaml").is_file()]
    return list(dict.fromkeys(names))


def _fingerprint(inputs, config):
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for name in sorted(inputs):
        digest.update(name.encode())
        path = Path(inputs[name])
        digest.update(path.read_bytes() if path.is_file() else b"<absent>")
    return digest.hexdigest()


def _drop_stale_executions(build_dir, config):
    """Drop the cached execution of every page whose inputs changed; return those pages."""
    stamp = build_dir / STAMP
    before = json.loads(stamp.read_text()) if stamp.is_file() else {}
    now = {str(page): _fingerprint(page_inputs(page, config), config) for page in pages()}
    stale = [page for page, key in now.items() if before.get(page) != key]
    if stale:
        cache_dir = build_dir / ".jupyter_cache"
        if cache_dir.is_dir():
            from jupyter_cache import get_cache

            cache = get_cache(cache_dir)
            for record in cache.list_cache_records():
                if record.uri in stale:
                    cache.remove_cache(record.pk)
        # Sphinx does not read a page again whose source is unchanged: drop what it kept.
        for folder in (".doctrees", "jupyter_execute"):
            shutil.rmtree(build_dir / folder, ignore_errors=True)
    return stale, now


def install_mathjax(static_dir=None):
    """Copy MathJax 3.2.2 (``tex-chtml.js``, its fonts and TeX extensions) from the
    ``django-static-mathjax`` wheel into the book's static folder, once."""
    if static_dir is None:
        static_dir = project.root() / "book" / "_static" / "mathjax"
    source = resources.files("mathjax") / "static" / "mathjax" / "es5"
    for part in _MATHJAX_PARTS:
        target = Path(static_dir) / part
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with resources.as_file(source / part) as path:
            (shutil.copytree if path.is_dir() else shutil.copyfile)(path, target)
    return Path(static_dir)


def render_run_notebooks(runs, out):
    """The executed notebook of every complete run as HTML under ``out`` (for the runs table).

    A page is rendered again when its notebook changed: each page ends with the SHA-256 of the
    notebook it was made from, and a page without that line (cut short) or with another one is
    made again. Pages are written by rename, so none is ever half written.
    """
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="classic")
    written = 0
    for run_dir in runs["run_dir"]:
        source = Path(run_dir) / RunDirectory.NOTEBOOK
        if not source.is_file():
            continue
        target = Path(out) / f"{Path(run_dir).name}.html"
        stamp = f"<!-- valf: rendered from {hashlib.sha256(source.read_bytes()).hexdigest()} -->"
        if target.is_file() and target.read_text(encoding="utf-8").rstrip().endswith(stamp):
            continue
        body, _ = exporter.from_notebook_node(nbformat.read(source, as_version=4))
        write_atomic(target, f"{body}\n{stamp}\n")
        written += 1
    return written


def _as_variable(value):
    """A setting as a ``VALF_BOOK_*`` variable holds it (a list as names separated by spaces)."""
    if isinstance(value, list):
        return " ".join(value) or "none"
    return str(value or "none")


def _nothing_to_show(study):
    return (
        f"The study {study!r} has no complete run yet, so the book has nothing to show. Run "
        f"`valf sweep {study}` first (or `make study`)."
    )


def build(study=None, ablations=None, cv=None, real=None, output=None, out=sys.stdout, **overrides):
    """Collect the results of the studies shown and build the book; return the index path.

    ``output`` is the folder that receives ``_build`` (default: the project root);
    ``overrides`` are other settings (``results``, ``runs_root``, ``studies``).
    """
    import pandas as pd

    from valf_study.studies.results import write_results
    from valf_study.studies.spec import find_study_file

    root = project.root()
    config = settings(study=study, ablations=ablations, cv=cv, real=real, **overrides)
    if not (root / config["runs_root"]).is_dir():
        raise ValueError(_nothing_to_show(config["study"]))
    for name in _shown(config):
        write_results(
            find_study_file(name, root / config["studies"]),
            root / config["runs_root"],
            root / config["results"],
        )
    main_runs = pd.read_parquet(root / config["results"] / config["study"] / "runs.parquet")
    if not (main_runs["status"] == "done").any():
        raise ValueError(_nothing_to_show(config["study"]))
    install_mathjax()
    build_dir = (Path(output) if output is not None else root) / "_build"
    build_dir.mkdir(parents=True, exist_ok=True)
    stale, keys = _drop_stale_executions(build_dir, config)
    print(f"pages to execute: {len(stale)} of {len(keys)}", file=out, flush=True)
    environment = {
        **os.environ,
        **{variable: _as_variable(config[key]) for key, variable in ENVIRONMENT.items()},
    }
    command = [
        str(Path(sys.executable).parent / "jupyter-book"),
        "build",
        str(root),
        "-W",
        "--keep-going",
        "--path-output",
        str(build_dir.parent),
    ]
    print(" ".join(command), file=out, flush=True)
    subprocess.run(command, check=True, env=environment, cwd=root)
    (build_dir / STAMP).write_text(json.dumps(keys, indent=1))  # only after a good build
    for name in _shown(config):  # after the build: Sphinx owns _build/html
        runs = pd.read_parquet(root / config["results"] / name / "runs.parquet")
        render_run_notebooks(runs, build_dir / "html" / "runs")
    index = build_dir / "html" / "index.html"
    print(f"The book: {index}", file=out)
    return index
