"""Run parameters: defaults, checks with the valid choices named, normalisation, run ids,
and the notebook's literal-only parameters cell."""

import ast
import json
from pathlib import Path

import nbformat
import pytest

from valf_study.run import parameters
from valf_study.run.parameters import ParameterError, resolve_parameters, run_id

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "train.ipynb"


def test_defaults_follow_the_paper_protocol():
    p = resolve_parameters()
    assert (
        p["batch_size"],
        p["epochs"],
        p["early_stopping_patience"],
        p["reduce_lr_patience"],
        p["min_lr"],
        p["image_scale"],
    ) == (4, 100, 25, 10, 1e-7, 0.25)
    assert (p["warmup_epochs"], p["rate"], p["gamma"]) == (10, 0.01, 2.0)


def test_resolving_is_idempotent_and_json_plain():
    for loss in parameters.LOSSES:
        p = resolve_parameters(loss=loss, split="cv", fold=2)
        assert resolve_parameters(p) == p
        assert json.loads(json.dumps(p)) == p


def test_unknown_names_get_the_closest_valid_one():
    with pytest.raises(
        ParameterError,
        match=r"Unknown parameter `lerning_rate` \(did you mean "
        r"`learning_rate`\?\)\. Valid parameters: runs_root,",
    ):
        resolve_parameters(lerning_rate=1e-4)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "loss",
            "focal",
            r"must be one of \['CCE', 'WCCE', 'FL', 'CB', 'CEFL', 'CEFL2', 'DWFL', 'DRW', 'CDB', "
            r"'VALF'\], received 'focal'",
        ),
        ("backbone", "ResNet", r"must be one of \[.*'ResNet50'.*\].*Did you mean 'ResNet50'\?"),
        ("magnification", 20, r"must be one of \['20x', '40x'\]"),
        ("learning_rate", 0, r"`learning_rate` must be a number > 0"),
        ("learning_rate", "fast", r"`learning_rate` must be a number > 0"),
        ("epochs", 2.5, r"`epochs` must be an integer >= 1"),
        ("epochs", True, r"`epochs` must be an integer >= 1"),
        ("gamma", -1, r"`gamma` must be a number >= 0"),
        ("gamma", float("nan"), r"`gamma` must be a number >= 0"),
        ("alpha", [0.25, -1, 1], r"`alpha` must be null, a number > 0, or a list"),
        ("prior", "balanced", r"must be one of \['uniform', 'inverse_frequency'\]"),
        ("jit_compile", "yes", r"`jit_compile` must be \"auto\", true or false"),
        ("synthetic", {"dificulty": 1}, r"unknown keys \['dificulty'\]"),
        ("synthetic", {"difficulty": 2}, r"`synthetic`: `difficulty` must be a number in \[0, 1\]"),
    ],
)
def test_invalid_values_are_rejected_with_what_is_valid(name, value, message):
    with pytest.raises(ParameterError, match=message):
        resolve_parameters({name: value})


def test_yaml_style_numbers_are_read():
    p = resolve_parameters(learning_rate="1e-5", epochs=30.0)
    assert p["learning_rate"] == 1e-5 and p["epochs"] == 30 and isinstance(p["epochs"], int)


def test_parameters_a_loss_does_not_use_are_null():
    cce = resolve_parameters(loss="CCE", gamma=5, warmup_epochs=3)
    assert cce["gamma"] is None and cce["warmup_epochs"] is None and cce["prior"] is None
    valf_ = resolve_parameters(loss="VALF", gamma=5)
    assert valf_["gamma"] == 5 and valf_["alpha"] is None and valf_["cb_beta"] is None
    assert resolve_parameters(loss="FL", alpha=0.5)["alpha"] == 0.5
    # So a grid over gamma does not make distinct CCE runs.
    assert run_id(resolve_parameters(loss="CCE", gamma=0)) == run_id(
        resolve_parameters(loss="CCE", gamma=5)
    )


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"fold": 1}, r"`fold` applies only to split='cv'"),
        ({"split": "cv", "fold": 5}, r"`fold` must be below `n_folds` \(5\)"),
        ({"weights": "imagenet"}, r"'SmallCNN' has no pretrained weights"),
        (
            {"dataset": "lunghist700", "synthetic": {"difficulty": 0.2}},
            r"`synthetic` applies only to dataset synthetic, not 'lunghist700'",
        ),
        ({"loss": "FL", "alpha": [1, 2]}, r"`alpha` must list one value per class"),
    ],
)
def test_contradicting_parameters_are_rejected(given, message):
    with pytest.raises(ParameterError, match=message):
        resolve_parameters(given)


def test_run_id_depends_on_what_defines_the_run_only():
    base = resolve_parameters(loss="VALF", seed=1)
    assert run_id(base).startswith("VALF-SmallCNN-20x-seed1-")
    moved = resolve_parameters(base, runs_root="elsewhere", cache_dir="/tmp/c", keep_weights=False)
    assert run_id(moved) == run_id(base)
    for change in (
        {"seed": 2},
        {"rate": 1.0},
        {"magnification": "40x"},
        {"synthetic": {"difficulty": 0.5}},
        {"learning_rate": 1e-5},
    ):
        assert run_id(resolve_parameters(base, **change)) != run_id(base), change


def _parameters_cell():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    return notebook, tagged[0]


def test_notebook_parameters_cell_is_literal_and_complete():
    notebook, cell = _parameters_cell()
    tree = ast.parse(cell.source)
    values = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.dump(node)
        values[node.targets[0].id] = ast.literal_eval(node.value)  # raises unless literal
    assert list(values) == list(parameters.PARAMETERS)
    resolve_parameters(values)
    assert notebook.metadata.kernelspec.name == "valf"
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")


def test_notebook_rejects_names_that_are_not_parameters():
    before = {"valf", "In", "Out"}
    namespace = {"valf": None, "In": [], "Out": {}, "_i3": "", "loss": "CCE", "lossx": "FL"}
    with pytest.raises(ParameterError, match="`lossx`"):
        parameters.from_namespace(namespace, before)
    del namespace["lossx"]
    assert parameters.from_namespace(namespace, before)["loss"] == "CCE"


def test_a_folder_data_set_has_no_magnification_and_its_own_split_defaults():
    made = resolve_parameters(dataset="folder", data_root="images", loss="CCE")
    assert made["magnification"] is None and made["synthetic"] is None
    assert made["split"] == "stratified" and made["split_fractions"] == [0.7, 0.15, 0.15]
    assert run_id(made).startswith("CCE-SmallCNN-seed0-")
    given = resolve_parameters(dataset="folder", data_root="images", split_csv="s.csv")
    assert given["split"] == "official" and given["split_fractions"] is None
    assert given["split_seed"] is None
    assert resolve_parameters(made) == made  # idempotent
    sized = resolve_parameters(image_size=[224, 160])
    assert sized["image_size"] == [224, 160] and sized["image_scale"] is None


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"dataset": "folder", "magnification": "40x"},
            r"`magnification` does not apply to dataset 'folder'",
        ),
        ({"dataset": "folder", "split": "patient"}, r"'patient' is LungHist700's"),
        ({"dataset": "folder", "split": "official"}, r"`split_csv` is not given"),
        ({"split_csv": "s.csv"}, r"`split_csv` applies only to dataset folder, not 'synthetic'"),
        ({"dataset": "folder", "group_rule": "(a)(b)"}, r"at most one group"),
        ({"dataset": "folder", "group_rule": "(unclosed"}, r"a regular expression"),
        ({"image_size": [224]}, r"\[height, width\]"),
        ({"image_size": [4, 4]}, r"integers >= 8"),
        ({"split": "patient", "split_fractions": [0.5, 0.5]}, r"three shares"),
        ({"split": "patient", "split_fractions": [0.5, 0.3, 0.3]}, r"summing to 1"),
    ],
)
def test_folder_parameters_are_checked(given, message):
    with pytest.raises(ParameterError, match=message):
        resolve_parameters({"data_root": "images", **given})


def test_per_class_lists_are_checked_against_the_data_set_s_classes():
    from valf_study.run.parameters import check_class_lists

    folder = resolve_parameters(dataset="folder", loss="FL", alpha=[1, 2])  # classes unknown yet
    check_class_lists(folder, ["cat", "dog"])
    with pytest.raises(ParameterError, match=r"one value per class \(cat, dog, eel\)"):
        check_class_lists(folder, ["cat", "dog", "eel"])


def test_the_folds_of_a_cross_validation_can_change_with_the_seed():
    import pandas as pd

    from valf_study.data.splits import group_kfold_split

    common = {"dataset": "synthetic", "split": "kfold", "n_folds": 5, "split_seed": "seed"}
    first, second = (resolve_parameters(common, seed=s) for s in (0, 1))
    assert (first["split_seed"], second["split_seed"]) == (0, 1)  # resolved and recorded
    assert run_id(first) != run_id(second)
    fixed = resolve_parameters(common, seed=1, split_seed=0)
    assert fixed["split_seed"] == 0 and run_id(fixed) != run_id(second)
    # Different seeds, different partitions of the same images into folds.
    frame = pd.DataFrame(
        {"patient": [i // 3 for i in range(60)], "label": [i % 3 for i in range(60)]}
    )
    tests = [
        frozenset(
            group_kfold_split(frame, 5, 0, p["split_seed"], group="patient", label="label")
            .query("split == 'test'")
            .index
        )
        for p in (first, second)
    ]
    assert tests[0] != tests[1]
    assert resolve_parameters(common, split="official", seed=3)["split_seed"] is None
    with pytest.raises(ParameterError, match="split_seed"):
        resolve_parameters(common, split_seed="seeds")
