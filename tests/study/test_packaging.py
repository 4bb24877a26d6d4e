"""The set-up the README promises: two commands, one set of pins, every imported package
declared, CI running the same test command and the linter."""

import ast
import json
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]


def pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra, pins in project["optional-dependencies"].items():
        if extra != "cuda":  # NVIDIA machines only; the same packages with CUDA libraries
            requirements += pins
    return requirements


def _distribution(requirement):
    name = re.split(r"[\[=<>]", requirement)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_names(text):
    names = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def _cells(cells):
    # Cell options, IPython magics and shell escapes are not Python.
    return "\n".join(
        line
        for cell in cells
        for line in cell.splitlines()
        if not line.lstrip().startswith((":", "%", "!"))
    )


def _python_sources():
    for path in [
        *ROOT.glob("valf/**/*.py"),
        *ROOT.glob("tests/**/*.py"),
        *ROOT.glob("benchmarks/*.py"),
        ROOT / "conftest.py",
    ]:
        yield str(path.relative_to(ROOT)), path.read_text()
    for page in ROOT.glob("book/*.md"):
        pattern = r"^```\{code-cell\}[^\n]*\n(.*?)^```"
        yield (
            str(page.relative_to(ROOT)),
            _cells(re.findall(pattern, page.read_text(), re.S | re.M)),
        )
    notebook = json.loads((ROOT / "notebooks" / "train.ipynb").read_text())
    yield (
        "notebooks/train.ipynb",
        _cells(["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]),
    )


def test_every_imported_package_is_declared_and_pinned():
    declared = {_distribution(r) for r in pyproject_pins()}
    owners = packages_distributions()
    missing = {}
    # The benchmark scripts import one another by module name.
    local = {"valf", "tests"} | {path.stem for path in (ROOT / "benchmarks").glob("*.py")}
    for where, code in _python_sources():
        for name in _imported_names(code) - set(sys.stdlib_module_names) - local:
            distributions = {_distribution(d) for d in owners.get(name, [name])}
            if not distributions & declared:
                missing.setdefault(name, set()).add(where)
    assert not missing


def test_every_dependency_is_pinned():
    for requirement in pyproject_pins():
        assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][A-Za-z0-9.+]*", requirement), requirement


def test_environment_yml_has_the_same_pins():
    lines = (ROOT / "environment.yml").read_text().splitlines()
    conda_pins = [line.strip()[2:] for line in lines if re.match(r"\s+- [\w\-]+==", line)]
    assert sorted(conda_pins) == sorted(pyproject_pins())


def test_readme_shows_the_two_commands_first_and_ci_runs_the_test_command():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make study", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE)
    assert re.search(r"^make lint$", ci, re.MULTILINE)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: \$\(STAMP\)( \$\(MATHJAX\))?$", makefile, re.MULTILINE)
    assert re.search(r"^study: \$\(STAMP\)$", makefile, re.MULTILINE)
    assert re.search(r"^\t\$\(BIN\)/ruff check \.$", makefile, re.MULTILINE)
    assert re.search(r"^\t\$\(BIN\)/ruff format --check \.$", makefile, re.MULTILINE)
    assert "npm" not in makefile  # everything from the Python package registry
