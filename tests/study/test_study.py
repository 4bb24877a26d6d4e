"""Study files: checked whole before any run, expanded to unique runs, selections made from
finished runs; the project's own study files load."""

from pathlib import Path

import pytest
import yaml

from valf_study.studies.plan import make_plan
from valf_study.studies.spec import StudyError, find_study_file, load_study, varied

STUDIES = Path(__file__).resolve().parents[2] / "studies"

BASE = {
    "name": "demo",
    "data": {"dataset": "synthetic", "root": "data/demo"},
    "defaults": {"epochs": 2},
    "experiments": {"main": {"grid": {"loss": ["CCE", "VALF"], "seed": [0, 1]}}},
}


def write(tmp_path, spec, name="demo.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_expansion_is_the_grid_with_shared_runs_trained_once(tmp_path):
    spec = dict(
        BASE,
        experiments={
            "main": {"grid": {"loss": ["CCE", "VALF"], "seed": [0, 1]}},
            "seeds": {"fixed": {"loss": "VALF"}, "grid": {"seed": [1, 2]}},
            "gamma": {"fixed": {"loss": "CCE", "seed": 0}, "grid": {"gamma": [0, 2]}},
        },
    )
    study = load_study(write(tmp_path, spec), runs_root=tmp_path / "runs")
    _plan = make_plan(study)
    runs, waiting = _plan.runs, _plan.waiting
    assert not waiting
    # 4 + 2 + 2 runs described; VALF seed 1 is shared, and CCE ignores gamma, so both gamma
    # runs are the main experiment's CCE seed 0.
    assert len(runs) == 5
    by_id = {r.run_id: r for r in runs}
    shared = [r for r in runs if r.params["loss"] == "VALF" and r.params["seed"] == 1]
    assert shared[0].experiments == ["main", "seeds"]
    cce0 = next(r for r in runs if r.params["loss"] == "CCE" and r.params["seed"] == 0)
    assert cce0.experiments == ["main", "gamma"]
    assert all(r.params["epochs"] == 2 for r in runs)
    assert all(r.run_dir.path == tmp_path / "runs" / r.run_id for r in by_id.values())
    assert {r.status for r in runs} == {"pending"}


def test_a_list_of_grids_runs_the_union_of_their_combinations(tmp_path):
    # scikit-learn's ParameterGrid takes a list of grids the same way.
    from sklearn.model_selection import ParameterGrid

    grids = [
        {"loss": ["CCE", "WCCE", "VALF"], "imbalance_ratio": [100], "seed": [0, 1]},
        {"loss": ["CCE", "VALF"], "imbalance_ratio": [10], "seed": [0, 1]},
    ]
    spec = dict(BASE, experiments={"main": {"grid": grids}})
    study = load_study(write(tmp_path, spec), runs_root=tmp_path / "runs")
    runs = make_plan(study).runs
    found = sorted((r.params["loss"], r.params["imbalance_ratio"], r.params["seed"]) for r in runs)
    expected = sorted(
        (c["loss"], float(c["imbalance_ratio"]), c["seed"]) for c in ParameterGrid(grids)
    )
    assert found == expected and len(runs) == 10
    assert all(r.experiments == ["main"] for r in runs)
    # What the experiment varies, for selections: every parameter, values in first-listed order.
    assert varied(study.experiments["main"])["imbalance_ratio"] == [100, 10]
    with pytest.raises(StudyError, match=r"grid 2 of the list is empty"):
        load_study(
            write(tmp_path, dict(BASE, experiments={"main": {"grid": [grids[0], {}]}})),
            runs_root=tmp_path / "runs",
        )
    bad = [grids[0], {"loss": ["CCE", "NOPE"]}]
    with pytest.raises(StudyError, match=r"main > grid > grid 2: .*NOPE"):
        load_study(write(tmp_path, dict(BASE, experiments={"main": {"grid": bad}})), tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"defaults": {"lerning_rate": 1e-4}},
            r"demo.yaml: defaults: Unknown parameter "
            r"`lerning_rate` \(did you mean `learning_rate`\?\)",
        ),
        (
            {"experiments": {"main": {"grid": {"loss": ["CCE", "Focal"]}}}},
            r"experiments > main > grid: Parameter `loss` must be one of \['CCE'",
        ),
        ({"experiments": {"main": {"grid": {"loss": "CCE"}}}}, r"must be a non-empty list"),
        ({"experiments": {"main": {"grids": {}}}}, r"unknown key\(s\) \['grids'\]"),
        ({"experiment": {}}, r"unknown key\(s\) \['experiment'\]"),
        ({"defaults": {"data_root": "x"}}, r"\['data_root'\] are set by the `data` block"),
        (
            {"data": {"dataset": "imagenet", "root": "x"}},
            r"data: Parameter `dataset` must be one of",
        ),
        ({"experiments": {"main": {"fixed": {"fold": 1}}}}, r"\(\): Parameter `fold` applies only"),
        (
            {
                "experiments": {
                    "main": {
                        "fixed": {"loss": "FL", "seed": 0},
                        "grid": {"loss": ["CCE", "VALF"], "gamma": [1, 2]},
                    }
                }
            },
            r"demo.yaml: experiments > main: \['loss'\] given both in `fixed` and in `grid`",
        ),
        (
            {
                "experiments": {
                    "main": {"select": {"alpha": {"experiment": "nope", "metric": "val_f1"}}}
                }
            },
            r"no experiment 'nope' in this study",
        ),
        (
            {
                "experiments": {
                    "main": {"select": {"alpha": {"experiment": "main", "metric": "val_loss"}}}
                }
            },
            r"metric must be one of \['val_accuracy'",
        ),
        (
            {
                "experiments": {
                    "a": {
                        "fixed": {"loss": "FL"},
                        "grid": {"alpha": [0.25, 0.5]},
                        "select": {"gamma": {"experiment": "b", "metric": "val_f1"}},
                    },
                    "b": {
                        "fixed": {"loss": "FL"},
                        "grid": {"gamma": [1, 2]},
                        "select": {"alpha": {"experiment": "a", "metric": "val_f1"}},
                    },
                }
            },
            r"in a circle \(a -> b -> a\)",
        ),
    ],
)
def test_a_malformed_study_is_rejected_naming_file_and_place(tmp_path, change, message):
    spec = {**BASE, **change}
    with pytest.raises(StudyError, match=message):
        load_study(write(tmp_path, spec))


def test_not_yaml_and_missing_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(StudyError, match=r"bad\.yaml is not valid YAML"):
        load_study(bad)
    with pytest.raises(StudyError, match=r"No study 'nothing'.*Known studies: \["):
        find_study_file("nothing", tmp_path)


def _finish(run, **metrics):
    run.run_dir.write_json(run.run_dir.METRICS, metrics)
    run.run_dir.mark_done()


def test_a_selected_parameter_waits_for_its_source_then_takes_the_best_mean(tmp_path):
    spec = dict(
        BASE,
        experiments={
            "lr": {
                "fixed": {"loss": "CCE"},
                "grid": {
                    "backbone": ["SmallCNN", "MobileNetV3Small"],
                    "learning_rate": ["1e-3", "1e-4"],
                    "seed": [0, 1],
                },
            },
            "main": {
                "fixed": {"loss": "VALF"},
                "grid": {"backbone": ["SmallCNN", "MobileNetV3Small"]},
                "select": {
                    "learning_rate": {
                        "experiment": "lr",
                        "metric": "val_accuracy",
                        "by": ["backbone"],
                    }
                },
            },
        },
    )
    study = load_study(write(tmp_path, spec), runs_root=tmp_path / "runs")
    _plan = make_plan(study)
    runs, waiting = _plan.runs, _plan.waiting
    assert len(runs) == 8 and [w.experiment for w in waiting] == ["main"]
    assert "has 0 of 8 runs done" in waiting[0].reason
    # SmallCNN: 1e-3 mean 0.7, 1e-4 mean 0.8 -> 1e-4. MobileNet: a tie at 0.5 -> the first listed.
    scores = {
        ("SmallCNN", 1e-3): [0.6, 0.8],
        ("SmallCNN", 1e-4): [0.9, 0.7],
        ("MobileNetV3Small", 1e-3): [0.5, 0.5],
        ("MobileNetV3Small", 1e-4): [0.4, 0.6],
    }
    for run in runs:
        key = (run.params["backbone"], run.params["learning_rate"])
        _finish(run, val_accuracy=scores[key][run.params["seed"]])
    _plan = make_plan(study)
    runs, waiting = _plan.runs, _plan.waiting
    assert not waiting
    main = {
        r.params["backbone"]: r.params["learning_rate"] for r in runs if r.experiments == ["main"]
    }
    assert main == {"SmallCNN": 1e-4, "MobileNetV3Small": 1e-3}
    table = make_plan(study).selections["main"]["learning_rate"]["table"]
    chosen = {(row["backbone"], row["learning_rate"]): row["chosen"] for row in table}
    assert chosen[("SmallCNN", 1e-4)] and not chosen[("SmallCNN", 1e-3)]
    assert [
        row["mean_val_accuracy"] for row in table if row["backbone"] == "SmallCNN"
    ] == pytest.approx([0.7, 0.8])


def test_selecting_from_another_study_names_the_command_to_run(tmp_path):
    source = dict(
        BASE, name="source", experiments={"main": {"grid": {"learning_rate": [1e-3, 1e-4]}}}
    )
    write(tmp_path, source, "source.yaml")
    target = dict(
        BASE,
        experiments={
            "main": {
                "select": {
                    "learning_rate": {"study": "source", "experiment": "main", "metric": "val_f1"}
                }
            }
        },
    )
    study = load_study(write(tmp_path, target), runs_root=tmp_path / "runs")
    _plan = make_plan(study)
    runs, waiting = _plan.runs, _plan.waiting
    assert runs == [] and "run `valf sweep" in waiting[0].reason
    assert "source.yaml" in waiting[0].reason


@pytest.mark.parametrize("path", sorted(STUDIES.glob("*.yaml")), ids=lambda p: p.stem)
def test_the_project_studies_load(path, tmp_path):
    study = load_study(path, runs_root=tmp_path)
    _plan = make_plan(study)
    runs, waiting = _plan.runs, _plan.waiting
    assert runs or waiting
    assert study.name == path.stem


def test_the_quick_study_is_the_paper_s_grid_with_both_readings_of_eq_7(tmp_path):
    _plan = make_plan(load_study(STUDIES / "quick.yaml", runs_root=tmp_path))
    runs, waiting = _plan.runs, _plan.waiting
    # CCE, WCCE, FL, DWFL, DRW, CDB, VALF at two rates
    assert not waiting and len(runs) == 8 * 2 * 3
    assert {r.params["dataset"] for r in runs} == {"synthetic"}
    from valf_study.run.parameters import method_label

    assert {method_label(r.params) for r in runs} == {
        "CCE",
        "WCCE",
        "FL",
        "DWFL",
        "DRW",
        "CDB",
        "VALF (r=0.01)",
        "VALF (r=1)",
    }
    # the cross-validated protocol: the same grid, every fold, every image tested once a seed
    _plan = make_plan(load_study(STUDIES / "quick-cv.yaml", runs_root=tmp_path))
    cv, _ = _plan.runs, _plan.waiting
    assert len(cv) == 48 * 5 and {r.params["split"] for r in cv} == {"kfold"}


def test_the_command_line_rejects_a_typo_before_any_run(tmp_path, capsys):
    from valf_study.cli import main

    spec = {**BASE, "defaults": {"epoch": 3}}
    code = main(["sweep", str(write(tmp_path, spec)), "--runs-root", str(tmp_path / "runs")])
    error = capsys.readouterr().err
    assert code == 2 and "Unknown parameter `epoch` (did you mean `epochs`?)" in error
    assert "Traceback" not in error and not (tmp_path / "runs").exists()
    assert main(["sweep", "no-such-study", "--dry-run"]) == 2
    assert "No study 'no-such-study'" in capsys.readouterr().err


def test_a_study_extends_the_data_and_defaults_of_another(tmp_path):
    write(tmp_path, BASE)
    child = {
        "name": "child",
        "extends": "demo",
        "defaults": {"warmup_epochs": 1},
        "experiments": {"warmup": {"fixed": {"loss": "VALF"}, "grid": {"warmup_epochs": [0, 3]}}},
    }
    study = load_study(write(tmp_path, child, "child.yaml"))
    assert study.data["root"] == "data/demo"
    assert study.defaults == {"epochs": 2, "warmup_epochs": 1}
    assert list(study.experiments) == ["warmup"]  # experiments are not inherited
    _plan = make_plan(study)
    runs, _ = _plan.runs, _plan.waiting
    assert [r.params["warmup_epochs"] for r in runs] == [0, 3]
    assert all(r.params["epochs"] == 2 for r in runs)
    write(tmp_path, {**BASE, "extends": "child"})
    with pytest.raises(StudyError, match=r"in a circle \(child -> demo -> child\)"):
        load_study(tmp_path / "child.yaml")


def test_the_paper_takes_each_backbone_s_learning_rate_from_lr_selection(tmp_path):
    _plan = make_plan(load_study(STUDIES / "lr-selection.yaml", runs_root=tmp_path))
    lr_runs, _ = _plan.runs, _plan.waiting
    paper = load_study(STUDIES / "paper.yaml", runs_root=tmp_path)
    _plan = make_plan(paper)
    runs, waiting = _plan.runs, _plan.waiting
    assert not runs and "lr-selection/lr, which has 0 of 100 runs done" in waiting[0].reason
    best = {"ResNet50": 1e-5}  # every other backbone: 1e-4
    for run in lr_runs:
        chosen = best.get(run.params["backbone"], 1e-4)
        run.run_dir.write_json(
            run.run_dir.METRICS,
            {"val_accuracy": 0.9 if run.params["learning_rate"] == chosen else 0.5},
        )
        run.run_dir.mark_done()
    _plan = make_plan(paper)
    runs, waiting = _plan.runs, _plan.waiting
    assert not waiting and len(runs) == 5 * 8 * 2 * 3  # backbones x methods x mags x seeds
    assert {(r.params["backbone"], r.params["learning_rate"]) for r in runs} == {
        (b, best.get(b, 1e-4))
        for b in ("ResNet50", "EfficientNetV2B3", "DenseNet121", "InceptionV3", "ConvNeXtTiny")
    }
    assert all(r.params["weights"] == "imagenet" and r.params["image_scale"] == 0.25 for r in runs)
