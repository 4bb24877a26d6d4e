"""The set-up the README promises: two distributions (the library alone, the study on it), two
commands, one set of pins, every imported package declared where it is used, CI running the same
test command and the linter."""

import ast
import json
import re
import subprocess
import sys
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
STUDY_TOML = tomllib.loads((ROOT / "valf_study" / "pyproject.toml").read_text())
STUDY = STUDY_TOML["project"]


def _distribution(requirement):
    name = re.split(r"[\[=<>;]", requirement)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def study_pins():
    """Every exact pin of the study's environment: the study's dependencies and extras (but
    ``cuda``, NVIDIA machines only), and the library's backend and test extras."""
    pins = [r for r in STUDY["dependencies"] if _distribution(r) != "valf"]
    for extra, requirements in STUDY["optional-dependencies"].items():
        if extra != "cuda":
            pins += requirements
    for requirements in LIBRARY["optional-dependencies"].values():
        pins += requirements
    return sorted(set(pins))


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


def _sources(*patterns):
    for pattern in patterns:
        for path in sorted(ROOT.glob(pattern)):
            yield str(path.relative_to(ROOT)), path.read_text()


def _study_sources():
    yield from _sources("valf_study/**/*.py", "tests/study/*.py", "benchmarks/*.py", "conftest.py")
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


def _undeclared(sources, declared):
    owners = packages_distributions()
    # The benchmark scripts import one another by module name.
    local = {"valf", "valf_study", "tests"} | {p.stem for p in (ROOT / "benchmarks").glob("*.py")}
    missing = {}
    for where, code in sources:
        for name in _imported_names(code) - set(sys.stdlib_module_names) - local:
            distributions = {_distribution(d) for d in owners.get(name, [name])}
            if not distributions & declared:
                missing.setdefault(name, set()).add(where)
    return missing


def test_the_library_imports_only_keras_and_numpy():
    declared = {_distribution(r) for r in LIBRARY["dependencies"]}
    assert declared == {"keras", "numpy"}
    assert not _undeclared(_sources("valf/**/*.py"), declared)
    # Its tests need pytest besides, and the backends of its extras where they test one;
    # scikit-learn only where it is there (importorskip).
    extras = {_distribution(r) for rs in LIBRARY["optional-dependencies"].values() for r in rs}
    assert not _undeclared(_sources("tests/library/*.py", "tests/*.py"), declared | extras)


def test_every_package_the_study_imports_is_declared_and_pinned():
    declared = {_distribution(r) for r in study_pins()}
    assert not _undeclared(_study_sources(), declared)


def test_every_dependency_of_the_study_is_pinned():
    for requirement in study_pins():
        assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][A-Za-z0-9.+]*", requirement), requirement


def _version(text):
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def test_the_librarys_ranges_admit_the_studys_pins():
    pins = {_distribution(r): r.split("==")[1] for r in study_pins()}
    for requirement in LIBRARY["dependencies"]:
        name = _distribution(requirement)
        for operator, bound in re.findall(r"(>=|<)([\d.]+)", requirement):
            pinned, limit = _version(pins[name]), _version(bound)
            assert pinned >= limit if operator == ">=" else pinned < limit, (requirement, pins)


def test_environment_yml_has_the_same_pins():
    lines = (ROOT / "environment.yml").read_text().splitlines()
    conda_pins = [line.strip()[2:] for line in lines if re.match(r"\s+- [\w\-]+==", line)]
    assert sorted(conda_pins) == study_pins()
    assert "      - -e ." in lines and "      - -e ./valf_study" in lines


def test_the_study_distribution_lists_every_package_of_its_folder():
    found = sorted(
        ".".join(("valf_study", *p.parent.relative_to(ROOT / "valf_study").parts))
        for p in (ROOT / "valf_study").rglob("__init__.py")
        if "egg-info" not in str(p)
    )
    assert sorted(STUDY_TOML["tool"]["setuptools"]["packages"]) == found


@pytest.mark.slow
def test_the_library_wheel_holds_the_library_only(tmp_path):
    """``pip wheel --no-deps .`` at the root: the library's modules and nothing of the study, a
    few thousand lines at most."""
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("-q", "-w", str(tmp_path), str(ROOT)),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("valf-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        code = [n for n in names if n.endswith(".py")]
        lines = sum(len(archive.read(n).splitlines()) for n in code)
    assert all(n.startswith(("valf/", "valf-")) for n in names), names
    assert {n.split("/")[1] for n in code} >= {"__init__.py", "losses.py", "reweighting.py"}
    assert lines < 4000, lines


def test_readme_shows_the_two_commands_first_and_ci_runs_the_test_command():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make study", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.MULTILINE)
    assert re.search(r"^make lint$", ci, re.MULTILINE)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: \$\(STAMP\)$", makefile, re.MULTILINE)
    assert re.search(r"^test-fast: \$\(STAMP\)$", makefile, re.MULTILINE)
    assert re.search(r"^study: \$\(STAMP\)$", makefile, re.MULTILINE)
    assert re.search(r"^\t\$\(BIN\)/ruff check \.$", makefile, re.MULTILINE)
    assert re.search(r"^\t\$\(BIN\)/ruff format --check \.$", makefile, re.MULTILINE)
    assert "npm" not in makefile  # everything from the Python package registry
