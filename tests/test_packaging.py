"""The set-up the README promises: two commands, one set of pins, CI running the same test command."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in ("study", "test"):
        requirements += project["optional-dependencies"][extra]
    return requirements


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
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: \$\(STAMP\)( \$\(MATHJAX\))?$", makefile, re.MULTILINE)
    assert re.search(r"^study: \$\(STAMP\)$", makefile, re.MULTILINE)
