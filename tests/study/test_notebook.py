"""The training notebook: a literal-only parameters cell naming every run parameter, the
quick study's settings as its demonstration values, and nothing executed stored in git."""

import ast
from pathlib import Path

import nbformat
import yaml

from valf_study.run.parameters import PARAMETERS, resolve_parameters

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = nbformat.read(ROOT / "notebooks" / "train.ipynb", as_version=4)


def parameters_cell():
    (cell,) = [c for c in NOTEBOOK.cells if "parameters" in c.metadata.get("tags", [])]
    return cell


def literal_assignments(source):
    values = {}
    for statement in ast.parse(source).body:
        assert isinstance(statement, ast.Assign) and len(statement.targets) == 1, ast.unparse(
            statement
        )
        values[statement.targets[0].id] = ast.literal_eval(statement.value)
    return values


def test_the_parameters_cell_is_literals_naming_every_parameter_in_order():
    values = literal_assignments(parameters_cell().source)
    assert list(values) == list(PARAMETERS)
    assert resolve_parameters(values)  # every value valid


def test_the_demonstration_is_one_run_of_the_quick_study():
    quick = yaml.safe_load((ROOT / "studies" / "quick.yaml").read_text())
    values = literal_assignments(parameters_cell().source)
    for name, value in quick["defaults"].items():
        assert values[name] == value, name
    assert values["data_root"] == quick["data"]["root"]
    assert values["synthetic"] == quick["data"]["synthetic"]


def test_the_notebook_is_stored_clean_with_the_project_kernel():
    assert NOTEBOOK.metadata.kernelspec.name == "valf"
    for cell in NOTEBOOK.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
