"""The book's numbers (valf.report) against hand computations on small made-up results."""

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from valf.report import stats, tables


def make_runs(f1):
    """A runs table: f1[(backbone, magnification, loss)] = one value per seed."""
    rows = []
    for (backbone, magnification, loss), values in f1.items():
        for seed, value in enumerate(values):
            rows.append(
                {
                    "run_id": f"{loss}-{backbone}-{magnification}-{seed}",
                    "status": "done",
                    "backbone": backbone,
                    "magnification": magnification,
                    "loss": loss,
                    "seed": seed,
                    "f1": value,
                    "accuracy": value + 0.01,
                    "precision": value,
                    "recall": value,
                }
            )
    rows.append({**rows[-1], "run_id": "failed", "status": "failed", "f1": np.nan})
    return pd.DataFrame(rows)


RUNS = make_runs(
    {
        ("A", "20x", "CCE"): [0.80, 0.82, 0.78],
        ("A", "20x", "VALF"): [0.85, 0.88, 0.86],
        ("A", "40x", "CCE"): [0.70, 0.90, 0.80],
        ("A", "40x", "FL"): [0.75, 0.72, 0.74],
        ("A", "40x", "VALF"): [0.71, 0.89, 0.79],
    }
)


def test_mean_ci_is_the_student_t_interval():
    values = [0.8, 0.85, 0.9, 0.7]
    mean, half = stats.mean_ci(values)
    low, high = scipy.stats.t.interval(
        0.95, len(values) - 1, loc=np.mean(values), scale=scipy.stats.sem(values)
    )
    assert mean == pytest.approx(np.mean(values)) and half == pytest.approx((high - low) / 2)
    assert np.isnan(stats.mean_ci([0.5])[1]) and np.isnan(stats.mean_ci([])[0])


def test_summary_marks_the_best_loss_per_setting_and_ignores_failed_runs():
    summary = tables.summary_table(RUNS).set_index(["backbone", "magnification", "loss"])
    assert summary.loc[("A", "20x", "VALF"), "f1_mean"] == pytest.approx(0.863333, abs=1e-6)
    assert summary.loc[("A", "40x", "VALF"), "seeds"] == 3  # the failed copy is not counted
    assert summary.loc[("A", "40x", "VALF"), "runs"] == 3
    assert summary["best"].groupby(level=[0, 1]).sum().tolist() == [1, 1]
    assert summary.loc[("A", "20x", "VALF"), "best"] and summary.loc[("A", "40x", "CCE"), "best"]
    assert tables.wins(summary.reset_index()) == (1, 2)


def test_paired_comparison_pairs_seeds_and_phrases_by_the_interval():
    paired = tables.paired_comparison(RUNS).set_index("magnification")
    clear = paired.loc["20x"]
    assert clear["baseline"] == "CCE" and clear["seeds_won"] == 3
    difference = np.array([0.05, 0.06, 0.08])
    assert clear["difference"] == pytest.approx(difference.mean())
    assert clear["ci"] == pytest.approx(stats.mean_ci(difference)[1])
    assert clear["verdict"] == "VALF better"
    close = paired.loc["40x"]  # +0.01, -0.01, -0.01: an interval across zero
    assert close["baseline"] == "CCE" and close["seeds_won"] == 1
    assert close["verdict"] == "no clear difference"


def test_comparison_with_the_paper_table():
    summary = tables.summary_table(RUNS)
    paper = pd.DataFrame(
        {
            "backbone": ["A", "A"],
            "loss": ["CCE", "VALF"],
            "magnification": ["20x", "20x"],
            "accuracy": [0.9, 0.9],
            "precision": [0.9, 0.9],
            "recall": [0.9, 0.9],
            "f1": [0.80, 0.95],
        }
    )
    table = tables.compare_with_paper(summary, paper).set_index("loss")
    assert table.loc["CCE", "difference"] == pytest.approx(0.0, abs=1e-12)
    assert table.loc["CCE", "paper_inside_ci"] and not table.loc["VALF", "paper_inside_ci"]
    assert len(tables.read_paper_table()) == 50  # 5 backbones x 5 losses x 2 magnifications


def test_per_class_recall_is_the_mean_over_seeds_of_each_run_s_recall():
    runs = RUNS[RUNS["run_id"].isin(["CCE-A-20x-0", "CCE-A-20x-1"])].copy()
    # per run, as metrics.json records it: seed 0 recalls 0.5, 1, 1; seed 1 recalls 1, 0, 1
    runs["recall_ACA"], runs["recall_NOR"], runs["recall_SCC"] = [0.5, 1.0], [1.0, 0.0], [1.0, 1.0]
    recall = tables.per_class_recall(runs).iloc[0]
    assert (recall["ACA"], recall["NOR"], recall["SCC"]) == (0.75, 0.5, 1.0)


def test_one_image_moves_macro_f1_by_the_computed_step():
    predictions = pd.DataFrame(
        {"run_id": "CCE-A-20x-0", "split": "test", "label": [0, 1, 2, 2], "predicted": [0, 1, 2, 2]}
    )
    steps = tables.one_image_f1_steps(predictions, RUNS)
    assert len(steps) == 4 and np.all(steps > 0)
    from sklearn.metrics import f1_score

    assert steps[0] == pytest.approx(1 - f1_score([0, 1, 2, 2], [1, 1, 2, 2], average="macro"))
