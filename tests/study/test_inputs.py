"""Inputs a sweep can trust (the cases a reviewer reproduced on valf 0.1, each tested here): a
study's name is its file's name and no output path leaves its root; duplicate keys and empty
grids in study files are errors; ``--force`` never deletes a run another process holds;
``valf results`` writes its tables as one set and refuses a runs root that does not exist;
every error a user can cause ends in one message (exit 2); a run whose process died is failed,
not running; a full disk is said once; a per-run page cut short is made again."""

import errno
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from valf_study.files import inside
from valf_study.run.rundir import RunDirectory
from valf_study.studies.plan import make_plan
from valf_study.studies.results import MANIFEST, load_results, write_results
from valf_study.studies.spec import StudyError, load_study

ROOT = Path(__file__).resolve().parents[2]


def study_file(folder, stem, experiments=None, **top):
    spec = {
        "title": "inputs",
        "data": {"dataset": "synthetic", "root": str(folder / "data")},
        "defaults": {"epochs": 1},
        "experiments": experiments or {"main": {"grid": {"loss": ["CCE", "FL"]}}},
        **top,
    }
    path = folder / f"{stem}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def valf(*args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "valf_study.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


# -- 5. a study's name is its file's name --------------------------------------------------------


def test_a_copied_study_file_is_its_new_name(tmp_path):
    """README's `cp studies/own-data.yaml studies/mine.yaml` gives the study `mine`."""
    (tmp_path / "studies").mkdir()
    source = (ROOT / "studies" / "own-data.yaml").read_text()
    (tmp_path / "studies" / "mine.yaml").write_text(source)
    assert load_study(tmp_path / "studies" / "mine.yaml", tmp_path / "runs").name == "mine"


@pytest.mark.parametrize("name", ["own-data", "/tmp/x", "../elsewhere"])
def test_a_name_other_than_the_files_is_refused(tmp_path, name):
    path = study_file(tmp_path, "mine", name=name)
    with pytest.raises(StudyError, match=r"a study's name is its file's name, 'mine'"):
        load_study(path, tmp_path / "runs")


def test_a_file_name_that_would_make_a_bad_path_is_refused(tmp_path):
    path = study_file(tmp_path, "my study")
    with pytest.raises(StudyError, match=r"letters, digits"):
        load_study(path, tmp_path / "runs")


def test_output_paths_stay_under_their_root(tmp_path):
    assert inside(tmp_path, "results", "quick") == tmp_path / "results" / "quick"
    for bad in ("../x", "/tmp/x"):
        with pytest.raises(ValueError, match="is outside"):
            inside(tmp_path / "results", bad)


# -- 7. silent configuration ------------------------------------------------------------------


def test_a_key_given_twice_is_an_error_with_both_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            data: {dataset: synthetic, root: data}
            experiments:
              main:
                grid: {loss: [CCE]}
              main:
                grid: {loss: [FL]}
            """
        )
    )
    with pytest.raises(StudyError, match=r"'main' is given twice .* at lines 3 and 5"):
        load_study(path, tmp_path / "runs")


def test_an_anchor_merged_into_a_mapping_is_not_a_duplicate(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            x-base: &base {loss: CCE}
            data: {dataset: synthetic, root: data}
            experiments:
              main:
                fixed: {<<: *base, seed: 1}
            """
        )
    )
    assert load_study(path, tmp_path / "runs").experiments["main"]["fixed"] == {
        "loss": "CCE",
        "seed": 1,
    }


@pytest.mark.parametrize(
    ("experiment", "message"),
    [
        ({"grid": {}}, r"grid is empty"),
        ({}, r"names no run parameter"),
        (None, r"names no run parameter"),
    ],
)
def test_an_empty_grid_or_experiment_is_an_error(tmp_path, experiment, message):
    path = study_file(tmp_path, "empty", {"main": experiment})
    with pytest.raises(StudyError, match=message):
        load_study(path, tmp_path / "runs")


# -- 6. --force never deletes a run another process holds ------------------------------------------

HOLD = """
import sys, time
from valf_study.run.rundir import RunDirectory
run = RunDirectory(sys.argv[1])
with run.lock():
    run.hold(study="other")
    print("holding", flush=True)
    time.sleep(60)
"""


def test_force_refuses_a_run_another_sweep_holds(tmp_path):
    from valf_study.studies.sweep import _remove_for_force

    plan = make_plan(load_study(study_file(tmp_path, "forced"), tmp_path / "runs"))
    held, free = plan.runs
    for run in plan.runs:
        run.run_dir.write_status("ok")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(held.run_dir.path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(StudyError, match=r"sweep of study 'other', process \d+"):
            _remove_for_force(plan.runs)
        assert held.run_dir.path.exists() and free.run_dir.path.exists()  # nothing deleted
    finally:
        holder.kill()
        holder.wait()
    _remove_for_force(plan.runs)
    assert not held.run_dir.path.exists() and not free.run_dir.path.exists()


# -- 8. tables that can lie ----------------------------------------------------------------------


def test_results_are_written_as_one_set(tmp_path, monkeypatch):
    path = study_file(tmp_path, "tables")
    (tmp_path / "runs").mkdir()
    write_results(path, tmp_path / "runs", tmp_path / "results")
    folder = tmp_path / "results" / "tables"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert MANIFEST in before

    import valf_study.studies.results as results

    calls = []
    real = results.write_atomic

    def dies_midway(target, data):
        calls.append(target)
        if len(calls) == 3:
            raise KeyboardInterrupt  # killed between two tables
        return real(target, data)

    monkeypatch.setattr(results, "write_atomic", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        write_results(path, tmp_path / "runs", tmp_path / "results")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # the old set, whole
    monkeypatch.undo()

    (folder / MANIFEST).unlink()  # a set from an older valf, or cut short
    with pytest.raises(FileNotFoundError, match=r"not a complete set"):
        load_results("tables", tmp_path / "results")


def test_results_refuse_a_runs_root_that_does_not_exist(tmp_path):
    path = study_file(tmp_path, "nowhere")
    (tmp_path / "runs").mkdir()
    write_results(path, tmp_path / "runs", tmp_path / "results")
    before = (tmp_path / "results" / "nowhere" / "runs.csv").read_bytes()
    result = valf(
        "results", path, "--runs-root", tmp_path / "missing", "--out", tmp_path / "results"
    )
    assert result.returncode == 2
    assert "runs root" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "results" / "nowhere" / "runs.csv").read_bytes() == before


# -- 9. unclear failures ------------------------------------------------------------------------


def test_a_corrupt_metrics_file_is_named(tmp_path):
    path = study_file(tmp_path, "corrupt")
    run = make_plan(load_study(path, tmp_path / "runs")).runs[0]
    run.run_dir.write_status("ok")
    (run.run_dir / run.run_dir.METRICS).write_text('{"accuracy": 0.5, "f1": ')
    run.run_dir.mark_done()
    result = valf("results", path, "--runs-root", tmp_path / "runs", "--out", tmp_path / "out")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{run.run_dir / run.run_dir.METRICS} is not valid JSON" in result.stderr


@pytest.mark.parametrize("option", ["--workers", "--threads", "--runs-per-gpu"])
def test_a_bad_count_names_its_option(option):
    result = valf("sweep", "quick", option, "-3", "--dry-run")
    assert result.returncode == 2
    assert f"argument {option}: must be a whole number >= 1, not -3" in result.stderr


def test_a_run_whose_process_died_is_failed_not_running(tmp_path):
    run = RunDirectory(tmp_path / "run")
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    run.write_status("running")
    record = json.loads((run / run.STATUS).read_text())
    record["pid"] = process.pid  # a process that has ended
    (run / run.STATUS).write_text(json.dumps(record))
    status = run.status()
    assert status["status"] == "failed" and "ended without recording why" in status["error"]
    run.write_status("running")  # this process: alive
    assert run.status()["status"] == "running"


def test_a_full_disk_is_recorded_and_said_once(tmp_path, monkeypatch):
    from valf_study.studies import execute
    from valf_study.studies.sweep import SweepSummary

    def full(self, name, value):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path / name))

    monkeypatch.setattr(RunDirectory, "write_json", full)
    request = {"run_dir": str(tmp_path / "r1"), "threads": 1, "cwd": str(tmp_path)}
    result = execute.execute_run(request)  # never raises
    assert result["status"] == "failed" and "No space left on device" in result["error"]
    summary = SweepSummary("s", failed=[result, {**result, "run_id": "r2"}])
    report = summary.report()
    assert report.count("the disk is full") == 1 and "FAILED" not in report


def test_a_run_page_cut_short_is_made_again(tmp_path):
    import nbformat

    from valf_study.report.build import render_run_notebooks

    run = tmp_path / "RUN-1"
    run.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nbformat.write(notebook, run / "train.ipynb")
    runs = pd.DataFrame({"run_dir": [str(run)]})
    assert render_run_notebooks(runs, tmp_path / "html") == 1
    page = tmp_path / "html" / "RUN-1.html"
    assert render_run_notebooks(runs, tmp_path / "html") == 0  # up to date
    whole = page.read_text()
    page.write_text(whole[: len(whole) // 2])  # cut short, and newer than its notebook
    future = time.time() + 100
    os.utime(page, (future, future))
    assert render_run_notebooks(runs, tmp_path / "html") == 1
    assert page.read_text() == whole


# -- 2. results tied to their data ---------------------------------------------------------------


def _folder_study(tmp_path):
    from tests.study.folder_fixture import make_image_folder

    root = make_image_folder(tmp_path / "images", [24, 24, 24], extras=False)
    spec = {
        "data": {"dataset": "folder", "root": str(root)},
        "defaults": {"image_size": [16, 16], "epochs": 1, "cache_dir": str(tmp_path / "cache")},
        "experiments": {"main": {"grid": {"loss": ["CCE"], "seed": [0, 1]}}},
    }
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(spec))
    return root, path


def _as_if_trained(plan):
    """Complete runs recording the fingerprint of the data they read (what training writes)."""
    from valf_study.data.prepare import data_set, split_frames

    for run in plan.runs:
        frames = split_frames(run.params)
        run.run_dir.write_json(
            run.run_dir.DATA, data_set(run.params).fingerprint(run.params, frames)
        )
        run.run_dir.write_status("ok")
        run.run_dir.mark_done()


def test_a_complete_run_whose_data_changed_is_not_reused_silently(tmp_path):
    from valf_study.studies.sweep import _prepare_data

    root, path = _folder_study(tmp_path)
    study = load_study(path, tmp_path / "runs")
    plan = make_plan(study)
    _as_if_trained(plan)
    _prepare_data(study, plan.runs, progress=False)  # unchanged: reused
    # The reviewer's case: images removed from a class folder after the runs completed.
    for image in sorted((root / "class_1").iterdir())[:3]:
        image.unlink()
    with pytest.raises(StudyError) as caught:
        _prepare_data(study, plan.runs, progress=False)
    message = str(caught.value)
    assert "The data of 2 complete run(s)" in message and "images recorded" in message
    assert "--rerun-changed" in message and "--keep-changed" in message
    _prepare_data(study, plan.runs, progress=False, data_changed="keep")
    assert all(run.run_dir.is_done() for run in plan.runs)
    _prepare_data(study, plan.runs, progress=False, data_changed="rerun")
    assert not any(run.run_dir.path.exists() for run in plan.runs)


def test_an_image_changed_in_place_changes_the_fingerprint(tmp_path):
    from valf_study.data.prepare import data_set, split_frames

    root, path = _folder_study(tmp_path)
    params = make_plan(load_study(path, tmp_path / "runs")).runs[0].params
    before = data_set(params).fingerprint(params, split_frames(params))
    assert data_set(params).fingerprint(params, split_frames(params)) == before  # stable
    image = next(p for p in sorted((root / "class_2").iterdir()) if p.suffix == ".png")
    image.write_bytes(image.read_bytes() + b"\0")  # same name, other content
    after = data_set(params).fingerprint(params, split_frames(params))
    assert after["fingerprint"] != before["fingerprint"] and after["basis"] == "files"


def test_a_generated_set_is_fingerprinted_by_its_settings(tmp_path):
    from valf_study.data.prepare import data_set, split_frames

    params = make_plan(load_study(study_file(tmp_path, "made"), tmp_path / "runs")).runs[0].params
    params = {**params, "synthetic": {**params["synthetic"], "scale": 0.05}}
    data_set(params).prepare(params, progress=False)
    found = data_set(params).fingerprint(params, split_frames(params))
    assert found["basis"] == "settings"
    other = {**params, "synthetic": {**params["synthetic"], "difficulty": 0.5}}
    assert data_set(other).fingerprint(other, split_frames(params)) != found


# -- 1. the sweep runs the checks of `valf data check` -------------------------------------------


def _folder_with_split_file(tmp_path, placements):
    """A three-class folder and a split file; ``placements`` adds copies: (source image, new
    path, split)."""
    import shutil

    from tests.study.folder_fixture import make_image_folder

    root = make_image_folder(tmp_path / "images", [12, 12, 12], extras=False, formats=(".png",))
    rows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for i, image in enumerate(sorted(folder.iterdir())):
            rows.append((image.relative_to(root).as_posix(), ("train", "val", "test")[i % 3]))
    for source, target, split in placements:
        shutil.copy(root / source, root / target)
        rows.append((target, split))
    table = pd.DataFrame(rows, columns=["path", "split"])
    table.to_csv(tmp_path / "split.csv", index=False)
    spec = {
        "data": {"dataset": "folder", "root": str(root), "split_csv": str(tmp_path / "split.csv")},
        "defaults": {"image_size": [16, 16], "epochs": 1, "cache_dir": str(tmp_path / "cache")},
        "experiments": {"main": {"grid": {"loss": ["CCE"]}}},
    }
    path = tmp_path / "checked.yaml"
    path.write_text(yaml.safe_dump(spec))
    return load_study(path, tmp_path / "runs")


@pytest.mark.parametrize(
    ("placements", "message"),
    [
        ([("class_0/class_0_0000.png", "class_0/copy.png", "test")], "more than one split"),
        ([("class_0/class_0_0000.png", "class_1/copy.png", "train")], "more than one class"),
    ],
)
def test_the_sweep_stops_on_what_valf_data_check_rejects(tmp_path, placements, message):
    from valf_study.data.errors import DataError
    from valf_study.studies.sweep import _prepare_data

    study = _folder_with_split_file(tmp_path, placements)
    with pytest.raises(DataError, match=message) as caught:
        _prepare_data(study, make_plan(study).runs, progress=False)
    assert "copy.png" in str(caught.value) and "class_0_0000.png" in str(caught.value)
    check = valf("data", "check", study.data["root"], "--split-csv", tmp_path / "split.csv")
    assert check.returncode == 2 and message in check.stdout  # the same verdict


def test_copies_within_one_class_and_split_are_reported_not_fatal(tmp_path):
    import io

    from valf_study.studies.sweep import _prepare_data

    study = _folder_with_split_file(
        tmp_path, [("class_0/class_0_0000.png", "class_0/copy.png", "train")]
    )
    said = io.StringIO()
    _prepare_data(study, make_plan(study).runs, progress=False, out=said)
    assert "note:" in said.getvalue() and "copy.png" in said.getvalue()
    check = valf("data", "check", study.data["root"], "--split-csv", tmp_path / "split.csv")
    assert check.returncode == 0 and "copy.png" in check.stdout
