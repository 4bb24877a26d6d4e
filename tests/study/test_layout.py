"""The house: importing valf and every command that does not train load no deep-learning
backend; lower stages never import higher ones, and no module imports another that imports it
back; no branch on a data set's name outside its module; recorded run ids stay; the README's
Data section agrees with the quick study's data."""

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
# The library (valf) is below everything and imports nothing of the study.
STAGES = {"library": 0, "base": 1, "data": 2, "run": 3, "studies": 4, "report": 5, "cli": 6}
BASE = ("metrics", "stats", "files", "plain", "project")
PACKAGES = ("valf", "valf_study")


def _stage(module):
    parts = module.split(".")
    if parts[0] == "valf":
        return "library"
    if parts[0] != "valf_study" or len(parts) == 1:
        return None
    return "base" if parts[1] in BASE else parts[1] if parts[1] in STAGES else None


def _modules():
    """Every module of the two packages: name -> path."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT).with_suffix("")
            found[".".join(relative.parts).removesuffix(".__init__")] = path
    return found


def _imports(path, module, modules):
    """The modules of the packages that ``path`` imports, at any depth in the file (a function's
    lazy import counts), relative imports resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            # a package's __init__ that imports its own submodules is a face, not a dependency
            if name and name != module and not name.startswith(module + "."):
                if not module.startswith(name + ".") or path.name == "__init__.py":
                    targets.add(name)
    return targets


def _graph():
    modules = _modules()
    return {module: _imports(path, module, modules) for module, path in modules.items()}


def test_lower_stages_never_import_higher_ones():
    offences = []
    for module, targets in _graph().items():
        own = _stage(module)
        for name in targets:
            other = _stage(name)
            if own and other and STAGES[other] > STAGES[own]:
                offences.append(f"{module} imports {name}")
    assert not offences


def test_no_module_imports_one_that_imports_it_back():
    from graphlib import CycleError, TopologicalSorter

    try:
        tuple(TopologicalSorter(_graph()).static_order())
    except CycleError as error:
        pytest.fail(f"modules import each other in a circle: {' -> '.join(error.args[1])}")


def test_the_cycle_check_finds_a_cycle_inside_a_package():
    from graphlib import CycleError, TopologicalSorter

    graph = _graph()
    graph["valf_study.studies.spec"] = graph["valf_study.studies.spec"] | {
        "valf_study.studies.plan"
    }
    with pytest.raises(CycleError):
        tuple(TopologicalSorter(graph).static_order())


def test_no_branch_on_a_data_sets_name_outside_its_own_module():
    """A comparison with a data set's name (``== "folder"``, ``in ("lunghist700", ...)``)
    belongs in that data set's module (valf_study/data/sets/), nowhere else."""
    from valf_study.data.dataset import registry

    names = set(registry())
    offences = []
    for module, path in _modules().items():
        if module.startswith("valf_study.data.sets."):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            for part in [node.left, *node.comparators]:
                values = part.elts if isinstance(part, (ast.Tuple, ast.List, ast.Set)) else [part]
                for value in values:
                    if isinstance(value, ast.Constant) and value.value in names:
                        offences.append(f"{module}:{node.lineno} compares with {value.value!r}")
    assert not offences


def test_recorded_run_ids_do_not_change():
    """Results already computed stay valid: the ids of recorded parameter sets (params.yaml of
    runs of the quick, ablation, cross-validation and own-data studies, and of the paper's
    grid) are what they were when recorded."""
    import json

    from valf_study.run.parameters import resolve_parameters, run_id

    recorded = json.loads((ROOT / "tests" / "data" / "recorded_runs.json").read_text())
    assert len(recorded) >= 20
    assert {identity: run_id(resolve_parameters(p)) for identity, p in recorded.items()} == {
        identity: identity for identity in recorded
    }


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
    from valf_study.data.synthetic import read_synthetic_info

    # Refuses a set made with other settings, and would not generate one over it.
    assert prepare_dataset(params, progress=False) == ["ACA", "NOR", "SCC"]
    recorded = read_synthetic_info(params["data_root"])
    assert {k: recorded[k] for k in study.data["synthetic"]} == study.data["synthetic"]
