"""The house: importing valf and every command that does not train load no deep-learning
backend; lower stages never import higher ones; the README's Data section agrees with the
quick study's data."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ("tensorflow", "keras", "jax", "jaxlib", "torch")

NO_TRAINING = """
import sys, tempfile
import valf
from valf_study import cli
from valf_study.studies.sweep import sweep
from valf_study.studies.results import write_results
from valf_study.report import book, build


summary = sweep("studies/quick.yaml", tempfile.mkdtemp(), dry_run=True, kernel="python3")
assert summary.planned > 0
write_results("studies/quick.yaml", tempfile.mkdtemp(), tempfile.mkdtemp())
config = book.settings()
inputs = [build.page_inputs(page, config) for page in build.pages()]
cli.build_parser().parse_args(["sweep", "quick", "--dry-run"])
print(sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1:])))
"""


def test_importing_valf_planning_a_sweep_and_collecting_results_load_no_backend():
    result = subprocess.run(
        [sys.executable, "-c", NO_TRAINING, *BACKENDS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_library_names_resolve_on_first_use():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, valf; assert 'keras' not in sys.modules; "
            "loss = valf.FocalLoss(gamma=2.0); "
            "print(type(loss).__module__, 'keras' in sys.modules, "
            "sorted(valf.__all__) == valf.__all__)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["valf.losses", "True", "True"]


# Each stage may import the ones before it, never the ones after (README.md, "How data flows").
STAGES = {"library": 0, "data": 1, "run": 2, "study": 3, "report": 4, "cli": 5}
LIBRARY = ("losses", "reweighting", "metrics", "stats", "_validation", "_plain")


def _stage(module):
    parts = module.split(".")
    if parts[0] != "valf":
        return None
    if len(parts) == 1 or parts[1] in LIBRARY:
        return "library"
    return parts[1] if parts[1] in STAGES else None


def test_lower_stages_never_import_higher_ones():
    offences = []
    for path in (ROOT / "valf").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        own = _stage(module)
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.module
                else []
            )
            for name in names:
                other = _stage(name)
                if own and other and STAGES[other] > STAGES[own]:
                    offences.append(f"{module} imports {name}")
    assert not offences


@pytest.mark.slow
def test_the_readme_data_section_makes_the_data_the_quick_study_asks_for(tmp_path):
    """Following README's Data section, then `make study`, must not stop at the data check."""
    from valf_study.data.prepare import prepare_dataset
    from valf_study.studies.spec import load_study

    readme = (ROOT / "README.md").read_text()
    command = re.search(r"valf (data make-synthetic [^\n#]*)", readme).group(1).split()
    bin_dir = Path(sys.executable).parent
    result = subprocess.run(
        [str(bin_dir / "valf"), *command, "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    study = load_study(ROOT / "studies" / "quick.yaml", tmp_path / "runs")
    params = {**study.data_parameters(), "data_root": str(tmp_path / study.data["root"])}
    found = prepare_dataset(params, progress=False)
    assert found["synthetic"] == study.data["synthetic"]
