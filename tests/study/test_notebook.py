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
    # Every value is valid and already in the form the run records: resolving changes none of
    # the values that apply to the run (those that do not apply are recorded as null).
    resolved = resolve_parameters(values)
    applied = {name: value for name, value in resolved.items() if value is not None}
    assert applied == {name: values[name] for name in applied}


def _choices_comment(name):
    """The names listed in the comment after ``<name> = ...`` in the parameters cell."""
    line = next(
        line for line in parameters_cell().source.splitlines() if line.startswith(f"{name} =")
    )
    return [part.strip() for part in line.split("#", 1)[1].split("(")[0].split(",")]


def test_the_cell_lists_the_losses_and_data_sets_of_the_registries():
    from valf_study.data.dataset import registry
    from valf_study.run.objective import LOSSES

    assert _choices_comment("loss") == list(LOSSES)
    assert _choices_comment("dataset") == sorted(registry())


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
