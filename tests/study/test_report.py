"""The book's numbers (valf_study.report.tables, valf_study.studies.comparisons) against
scikit-learn and hand
computations on small made-up results, and the checks of the paper's own table."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import f1_score, precision_recall_fscore_support

from valf_study import stats
from valf_study.report import tables
from valf_study.stats import prediction_interval
from valf_study.studies.comparisons import comparisons, count_verdicts

IMAGES = 30


def make_study(skill, seed=0):
    """Runs and predictions: skill[(backbone, magnification, method)] = accuracy per seed."""
    rng = np.random.default_rng(seed)
    labels = np.arange(IMAGES) % 3
    runs, predictions = [], []
    for (backbone, magnification, method), accuracies in skill.items():
        loss, _, rate = method.partition(" (r=")
        for run_seed, accuracy in enumerate(accuracies):
            run_id = f"{method}-{backbone}-{magnification}-{run_seed}"
            right = rng.random(IMAGES) < accuracy
            predicted = np.where(right, labels, (labels + rng.integers(1, 3, IMAGES)) % 3)
            p, r, f, _ = precision_recall_fscore_support(
                labels, predicted, labels=[0, 1, 2], zero_division=0
            )
            runs.append(
                {
                    "run_id": run_id,
                    "status": "done",
                    "experiments": "main",
                    "backbone": backbone,
                    "magnification": magnification,
                    "loss": loss,
                    "method": method,
                    "rate": float(rate[:-1]) if rate else np.nan,
                    "seed": run_seed,
                    "split": "official",
                    "f1": f.mean(),
                    "accuracy": (predicted == labels).mean(),
                    "precision": p.mean(),
                    "recall": r.mean(),
                    "f1_of_means": 2 * p.mean() * r.mean() / (p.mean() + r.mean()),
                    "recall_ACA": r[0],
                    "recall_NOR": r[1],
                    "recall_SCC": r[2],
                    "auc": 0.9,
                    "ece": 0.1,
                }
            )
            predictions.append(
                pd.DataFrame(
                    {
                        "run_id": run_id,
                        "split": "test",
                        "image_path": [f"i{i}" for i in range(IMAGES)],
                        "label": labels,
                        "predicted": predicted,
                    }
                )
            )
    runs = pd.DataFrame(runs)
    runs = pd.concat(
        [runs, runs.iloc[[-1]].assign(run_id="failed", status="failed", f1=np.nan)],
        ignore_index=True,
    )
    return runs, pd.concat(predictions, ignore_index=True)


SKILL = {
    ("A", "20x", "CCE"): [0.55, 0.6, 0.5],
    ("A", "20x", "FL"): [0.6, 0.55, 0.6],
    ("A", "20x", "VALF (r=0.01)"): [0.6, 0.6, 0.55],
    ("A", "20x", "VALF (r=1)"): [0.97, 0.98, 0.99],
    ("A", "40x", "CCE"): [0.8, 0.8, 0.8],
    ("A", "40x", "FL"): [0.8, 0.8, 0.8],
    ("A", "40x", "VALF (r=0.01)"): [0.8, 0.8, 0.8],
}
RUNS, PREDICTIONS = make_study(SKILL)


def test_seed_only_intervals_stay_within_what_the_metric_can_be():
    runs = RUNS.copy()
    # AUC near its ceiling and ECE near its floor, spread over seeds: mean +- t*se leaves [0, 1].
    runs["auc"] = np.tile([0.999, 0.90, 0.995], len(runs) // 3 + 1)[: len(runs)]
    runs["ece"] = np.tile([0.001, 0.09, 0.002], len(runs) // 3 + 1)[: len(runs)]
    summary = tables.summary_table(runs, PREDICTIONS, n_resamples=50)
    mean_auc = summary["auc_mean"].iloc[0]
    assert mean_auc + 1.96 * 0.05 / np.sqrt(3) > 1  # the unclipped interval would pass 1
    bounds = summary[[f"{m}_{end}" for m in ("auc", "ece") for end in ("low", "high")]]
    assert ((bounds >= 0) & (bounds <= 1)).all().all()
    assert (summary["ece_low"] == 0).any() and (summary["auc_high"] == 1).any()


def test_summary_means_are_scikit_learn_s_and_the_intervals_hold_them():
    summary = tables.summary_table(RUNS, PREDICTIONS, n_resamples=200).set_index(
        ["backbone", "magnification", "method"]
    )
    row = summary.loc[("A", "20x", "VALF (r=1)")]
    runs = RUNS[(RUNS["method"] == "VALF (r=1)") & (RUNS["status"] == "done")]
    assert row["f1_mean"] == pytest.approx(runs["f1"].mean())
    assert row["f1_of_means_mean"] == pytest.approx(runs["f1_of_means"].mean())
    assert row["f1_low"] <= row["f1_mean"] <= row["f1_high"] <= 1.0
    assert row["seeds"] == 3 and row["images"] == IMAGES
    assert summary.loc[("A", "40x", "VALF (r=0.01)"), "runs"] == 3  # the failed copy is left out
    assert summary["best"].groupby(level=[0, 1]).sum().tolist()[0] == 1
    assert summary.loc[("A", "20x", "VALF (r=1)"), "best"]
    best = summary["f1_mean"].groupby(level=[0, 1]).idxmax()
    assert tables.wins(summary.reset_index()) == (sum(m.startswith("VALF") for *_, m in best), 2)


def test_comparisons_are_pre_registered_paired_and_adjusted_together():
    table = comparisons(RUNS, PREDICTIONS, n_resamples=300, replicates=50)
    assert set(table["comparator"]) == {"FL", "CCE"}
    assert len(table) == 2 * 2 + 2  # 20x: two readings x two comparators; 40x: one reading
    clear = table.set_index(["magnification", "loss", "comparator"]).loc[
        ("20x", "VALF (r=1)", "FL")
    ]
    ours = RUNS[(RUNS["method"] == "VALF (r=1)") & (RUNS["status"] == "done")]["f1"].to_numpy()
    theirs = RUNS[(RUNS["method"] == "FL") & (RUNS["magnification"] == "20x")]["f1"].to_numpy()
    assert clear["mean_diff"] == pytest.approx((ours - theirs).mean())
    assert clear["p_adjusted"] >= clear["p_value"]
    assert set(table["verdict"]) <= {"better", "worse", "equivalent", "inconclusive"}
    assert sum(count_verdicts(table).values()) == len(table)


def test_several_main_runs_of_one_cell_are_refused():
    doubled = pd.concat([RUNS, RUNS.iloc[[0]].assign(run_id="copy")], ignore_index=True)
    with pytest.raises(ValueError, match="several runs of one setting, method and seed"):
        comparisons(doubled, PREDICTIONS)


def test_the_paper_s_f1_is_the_harmonic_mean_of_its_macro_precision_and_recall():
    check = tables.f1_check(tables.read_paper_table())
    assert int(check["same"].sum()) == 49
    (exception,) = check[~check["same"]].itertuples()
    assert (exception.backbone, exception.loss, exception.magnification) == (
        "InceptionV3",
        "FL",
        "40x",
    )


def test_fourteen_of_the_paper_s_accuracies_cannot_come_from_eq_9():
    assert tables.official_test_sizes() == {"20x": 48, "40x": 50}
    check = tables.accuracy_check(tables.read_paper_table())
    assert int((~check["as_eq9"]).sum()) == 14
    assert check["as_accuracy"].all()  # every value is k/N: ordinary accuracy


def test_the_paper_s_claimed_gains():
    gains = tables.claimed_gains(tables.read_paper_table()).set_index(["backbone", "magnification"])
    assert (gains["gain"] > 0).sum() == 8  # VALF best in 8 of 10 settings (the paper's Table 2)
    assert gains["gain"].max() == pytest.approx(0.040)
    assert gains["gain"].idxmax() == ("EfficientNetV2B3", "40x")
    assert gains.loc[("DenseNet121", "20x"), "best_other"] == "WCCE"
    assert gains.loc[("InceptionV3", "20x"), "best_other"] == "DWFL"


def _runs_of_the_paper_s_rows(paper, metrics, seeds=3):
    """Runs for every row of the paper's table, named as the study names them (both readings
    of VALF), ``seeds`` each; ``metrics(row)`` gives a run's metric columns."""
    rows = []
    for row in paper.itertuples():
        methods = ["VALF (r=0.01)", "VALF (r=1)"] if row.loss == "VALF" else [row.loss]
        for method in methods:
            for seed in range(seeds):
                rows.append(
                    {
                        "run_id": f"{row.backbone}-{row.magnification}-{method}-{seed}",
                        "status": "done",
                        "backbone": row.backbone,
                        "magnification": row.magnification,
                        "method": method,
                        "seed": seed,
                        **metrics(row),
                    }
                )
    return pd.DataFrame(rows)


def test_every_paper_row_is_compared_on_the_same_quantity_with_a_prediction_interval():
    paper = tables.read_paper_table()
    assert len(paper) == 50 and "ConvNeXtTiny" in set(paper["backbone"])
    rng = np.random.default_rng(3)
    runs = _runs_of_the_paper_s_rows(
        paper,
        lambda row: {
            "accuracy": rng.uniform(0.8, 0.95),
            "f1_of_means": rng.uniform(0.8, 0.95),
            "f1": 0.0,
        },
    )
    table = tables.compare_with_paper(runs, paper)
    assert len(table) == (50 + 10) * 2  # every paper row, both VALF readings, two metrics
    one = table[
        (table["backbone"] == "ConvNeXtTiny")
        & (table["magnification"] == "20x")
        & (table["method"] == "CCE")
        & (table["metric"] == "f1")
    ].iloc[0]
    ours = runs[
        (runs["backbone"] == "ConvNeXtTiny")
        & (runs["magnification"] == "20x")
        & (runs["method"] == "CCE")
    ]["f1_of_means"]
    low, high = prediction_interval(ours)
    paper_f1 = paper[
        (paper["paper_backbone"] == "ConvNeXt")
        & (paper["magnification"] == "20x")
        & (paper["loss"] == "CCE")
    ]["f1"].iloc[0]
    assert (one["paper"], one["ours"], one["pi_low"], one["pi_high"]) == pytest.approx(
        (paper_f1, ours.mean(), low, high)
    )
    assert one["inside"] == (low <= paper_f1 <= high)


def test_an_unknown_backbone_in_the_paper_table_is_an_error(tmp_path):
    table = (
        tables.read_paper_table()
        .drop(columns="backbone")
        .rename(columns={"paper_backbone": "backbone"})
    )
    table.loc[0, "backbone"] = "VGG16"
    table.to_csv(tmp_path / "paper.csv", index=False)
    with pytest.raises(ValueError, match=r"backbones \['VGG16'\]"):
        tables.read_paper_table(tmp_path / "paper.csv")


def test_fig4_claims_are_checked_against_the_right_runs():
    claims = tables.read_fig4_claims()
    check = tables.fig4_check(RUNS, claims).set_index("claim")
    done = RUNS[RUNS["status"] == "done"]
    valf = done[done["method"].str.startswith("VALF")]
    assert check.iloc[0]["ours"] == pytest.approx(valf["recall_SCC"].mean())
    assert check.loc[check.index[1], "ours"] == pytest.approx(done["recall_NOR"].mean())
    others = done[~done["method"].str.startswith("VALF")]
    assert check.loc[check.index[2], "ours"] == pytest.approx(others["recall_ACA"].mean())
    assert list(check["paper"]) == list(claims["paper_value"])


def test_weight_reach_table():
    runs = pd.DataFrame(
        {
            "status": "done",
            "method": ["VALF (r=1)"] * 2 + ["CCE"],
            "magnification": "20x",
            "weight_reach": [3.0, 5.0, np.nan],
        }
    )
    table = tables.weight_reach_table(runs).iloc[0]
    assert (table["runs"], table["mean"], table["min"], table["max"]) == (2, 4.0, 3.0, 5.0)


def test_per_class_recall_is_the_mean_over_seeds_of_each_run_s_recall():
    runs = RUNS[RUNS["run_id"].isin(["CCE-A-20x-0", "CCE-A-20x-1"])].copy()
    runs["recall_ACA"], runs["recall_NOR"], runs["recall_SCC"] = [0.5, 1.0], [1.0, 0.0], [1.0, 1.0]
    recall = tables.per_class_recall(runs).iloc[0]
    assert (recall["ACA"], recall["NOR"], recall["SCC"]) == (0.75, 0.5, 1.0)


def test_one_image_moves_macro_f1_by_the_computed_step():
    predictions = pd.DataFrame(
        {"run_id": "CCE-A-20x-0", "split": "test", "label": [0, 1, 2, 2], "predicted": [0, 1, 2, 2]}
    )
    steps = tables.one_image_f1_steps(predictions, RUNS)
    assert len(steps) == 4 and np.all(steps > 0)
    assert steps[0] == pytest.approx(1 - f1_score([0, 1, 2, 2], [1, 1, 2, 2], average="macro"))


# -- ablations, folds, classes, power, the paper ---------------------------------------------------


def _ablation_runs(seed=0):
    """An ablation grid at two magnifications, each with its own test images, three seeds."""
    rng = np.random.default_rng(seed)
    labels = np.arange(IMAGES) % 3
    runs, predictions = [], []
    for gamma in (0.0, 2.0):
        for magnification, level in (("20x", 0.9), ("40x", 0.55)):
            for run_seed in range(3):
                run_id = f"g{gamma}-{magnification}-{run_seed}"
                right = rng.random(IMAGES) < level - 0.1 * gamma / 2
                predicted = np.where(right, labels, (labels + 1) % 3)
                runs.append(
                    {
                        "run_id": run_id,
                        "status": "done",
                        "experiments": "gamma",
                        "gamma": gamma,
                        "magnification": magnification,
                        "seed": run_seed,
                        "split": "official",
                        "f1": f1_score(labels, predicted, labels=range(3), average="macro"),
                        "accuracy": (predicted == labels).mean(),
                    }
                )
                predictions.append(
                    pd.DataFrame(
                        {
                            "run_id": run_id,
                            "split": "test",
                            "image_path": [f"{magnification}/i{i}" for i in range(IMAGES)],
                            "label": labels,
                            "predicted": predicted,
                        }
                    )
                )
    return pd.DataFrame(runs), pd.concat(predictions, ignore_index=True)


def test_ablation_tables_are_per_magnification():
    runs, predictions = _ablation_runs()
    table = tables.ablation_table(runs, predictions, "gamma", "gamma", n_resamples=200)
    assert len(table) == 4 and set(table["magnification"]) == {"20x", "40x"}
    assert (table["seeds"] == 3).all() and (table["runs"] == 3).all()
    for row in table.itertuples():  # the interval is that of the mean of the dots drawn
        members = runs[(runs["gamma"] == row.gamma) & (runs["magnification"] == row.magnification)]
        assert row.f1_mean == pytest.approx(members["f1"].mean())
        assert row.images == IMAGES


def test_fold_intervals_use_the_corrected_resampled_t():
    rng = np.random.default_rng(2)
    rows = []
    for alpha in (0.5, 1.0):
        for magnification in ("20x", "40x"):
            for fold in range(5):
                rows.append(
                    {
                        "run_id": f"{alpha}-{magnification}-{fold}",
                        "status": "done",
                        "experiments": "alpha-cv",
                        "alpha": alpha,
                        "magnification": magnification,
                        "fold": fold,
                        "n_folds": 5,
                        "seed": 0,
                        "split": "cv",
                        "val_f1": rng.uniform(0.7, 0.9),
                        "n_train": 210,
                        "n_val": 53,
                    }
                )
    runs = pd.DataFrame(rows)
    table = tables.ablation_table(runs, None, "alpha-cv", "alpha")
    assert len(table) == 4 and (table["folds"] == 5).all()
    row = table.iloc[0]
    folds = runs[(runs["alpha"] == row["alpha"]) & (runs["magnification"] == row["magnification"])]
    values = folds["val_f1"].to_numpy()
    half = scipy_stats.t.ppf(0.975, 4) * np.sqrt((1 / 5 + 53 / 210) * values.var(ddof=1))
    assert (row["val_f1_low"], row["val_f1_high"]) == pytest.approx(
        (values.mean() - half, values.mean() + half)
    )
    assert row["test_train_ratio"] == pytest.approx(53 / 210)


def test_the_summary_averages_over_the_study_s_classes():
    runs, predictions = RUNS.copy(), PREDICTIONS.copy()
    runs["class_names"] = '["ACA", "NOR", "SCC", "LCC"]'  # a fourth class no image has
    summary = tables.summary_table(runs, predictions, metrics=("f1",), n_resamples=50)
    row = summary.iloc[0]
    members = runs[
        (runs["backbone"] == row["backbone"])
        & (runs["magnification"] == row["magnification"])
        & (runs["method"] == row["method"])
        & (runs["status"] == "done")
    ]
    expected = [
        f1_score(
            part["label"], part["predicted"], labels=range(4), average="macro", zero_division=0
        )
        for _, part in predictions[predictions["run_id"].isin(members["run_id"])].groupby("run_id")
    ]
    assert row["f1_mean"] == pytest.approx(np.mean(expected))
    assert row["f1_mean"] == pytest.approx(0.75 * members["f1"].mean())


def test_power_at_the_levels_holm_uses_its_floor_and_the_seeds_needed():
    table = comparisons(RUNS, PREDICTIONS, n_resamples=300, replicates=50)
    table["claim"] = 0.04
    detectable = tables.detectable_differences(table)
    first = detectable["level_first"].iloc[0]
    assert first == pytest.approx(0.05 / len(table))
    row, power_row = table.iloc[0], tables.power_table(table).iloc[0]
    assert detectable["detectable"].iloc[0] == pytest.approx(
        stats.detectable_difference(row["standard_error"], row["df"], alpha=first)
    )
    assert (detectable["detectable"] > detectable["detectable_unadjusted"]).all()
    floor = stats.detectable_difference(
        np.sqrt(row["image_variance"]), row["units"] - 1, alpha=first
    )
    assert power_row["floor_first"] == pytest.approx(floor)
    assert power_row["floor_last"] <= power_row["floor_first"]
    assert power_row["seeds_first"] == stats.seeds_needed(
        row["seed_variance"] * row["seeds"],
        row["image_variance"],
        row["units"] - 1,
        0.04,
        alpha=first,
    )
    summary = tables.power_summary({"official split": table, "k-fold": None})
    assert summary["protocol"].tolist() == ["official split"] and summary["claims"].iloc[0] == 6


def test_the_paper_s_numbers_against_ours_as_residuals():
    paper = tables.read_paper_table()
    rng = np.random.default_rng(3)
    runs = _runs_of_the_paper_s_rows(
        paper,
        lambda row: {
            "accuracy": rng.normal(row.accuracy - 0.02, 0.02),
            "f1_of_means": rng.normal(row.f1 - 0.02, 0.02),
        },
    )
    comparison = tables.compare_with_paper(runs, paper)
    one = comparison.iloc[0]
    assert one["residual"] == pytest.approx(
        (one["paper"] - one["ours"]) / (one["sd"] * np.sqrt(1 + 1 / 3))
    )
    # Outside the prediction interval exactly when the residual passes the t quantile.
    outside = comparison["residual"].abs() > scipy_stats.t.ppf(0.975, 2)
    assert (outside == ~comparison["inside"].astype(bool)).all()
    agreement = tables.paper_agreement(comparison).set_index(["metric", "valf_reading"])
    row = agreement.loc[("f1", "VALF (r=1)")]
    chosen = comparison[
        (comparison["metric"] == "f1")
        & (~comparison["method"].str.startswith("VALF") | (comparison["method"] == "VALF (r=1)"))
    ]
    assert row["numbers"] == 50 and row["outside"] == int((~chosen["inside"].astype(bool)).sum())
    assert row["mean_offset"] == pytest.approx((chosen["paper"] - chosen["ours"]).mean())
    assert row["offset_low"] < 0.02 < row["offset_high"] or abs(row["mean_offset"] - 0.02) < 0.01
    assert row["p_binomial"] == pytest.approx(
        scipy_stats.binomtest(int(row["outside"]), 50, 0.05).pvalue
    )


def test_the_critical_difference_and_p_value_figures_draw():
    from matplotlib.figure import Figure

    from valf_study.report import figures
    from valf_study.studies.comparisons import friedman_tests

    runs = RUNS.copy()
    cd = tables.critical_difference_table(friedman_tests(runs))
    figure = figures.plot_critical_difference(cd[cd["valf_reading"] == "VALF (r=0.01)"])
    assert isinstance(figure, Figure)
    histogram = figures.plot_p_values(np.random.default_rng(0).uniform(size=200))
    assert "below 0.05" in histogram.axes[0].get_title()


# -- what the pages show --------------------------------------------------------------------------


def test_the_comparisons_as_shown_one_line_each_with_both_intervals_on_one_line():
    table = comparisons(RUNS, PREDICTIONS, n_resamples=300, replicates=50)
    shown = tables.comparison_display(table)
    assert len(shown) == len(table) and "paper's gain" not in shown  # no claim to test
    row = table.iloc[0]
    # the interval for new test data, compact, at the Holm-adjusted level, never wrapped
    expected = tables.range_text(row["ci_new_low"], row["ci_new_high"], 3)
    assert shown["new test data"].iloc[0] == expected and " " not in expected
    assert float(shown["difference"].iloc[0].replace("−", "-")) == pytest.approx(
        row["mean_diff"], abs=5e-4
    )
    assert shown["setting"].iloc[0] == f"{row['backbone']} · {row['magnification']}"
    assert shown.attrs["data"] == f"3 seeds, {IMAGES}\u00a0images" and "data" not in shown
    opened = tables.comparison_display(table.assign(gate="open", claim=0.04))
    assert opened["verdict"].str.endswith("(gate open)").all()
    assert (opened["paper's gain"] == "0.040").all()


def test_table2_has_no_row_numbers_and_one_line_intervals():
    summary = tables.summary_table(RUNS, PREDICTIONS, n_resamples=50)
    styled = tables.table2(summary, tables.PROBABILITY_METRICS)
    assert "row_heading" not in styled.to_html()  # no index column
    bold = {row for (row, _), style in styled._compute().ctx.items() if style}
    shown = styled.data
    best = shown.groupby("setting")["F1 (eq. 12)"].transform(
        lambda cells: cells.str.split("\u00a0").str[0].astype(float).max()
    )
    assert bold == set(
        np.flatnonzero(shown["F1 (eq. 12)"].str.split("\u00a0").str[0].astype(float) == best)
    )
    assert len(bold) == 2  # one best per setting
    probabilities = tables.table2(summary, tables.PROBABILITY_METRICS).data
    assert list(probabilities.columns) == ["setting", "method", "F1 (eq. 12)", "AUC", "ECE"]


def _lab(hex_colour, matrix):
    """CIELAB of an sRGB colour as seen through a colour-vision-deficiency matrix (linear RGB)."""
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    linear = np.clip(matrix @ linear, 0, 1)
    xyz = (
        np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
        @ linear
        / np.array([0.95047, 1.0, 1.08883])
    )
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


# Machado, Oliveira and Fernandes (2009), severity 1.0: protanopia, deuteranopia, tritanopia.
VISION = {
    "normal": np.eye(3),
    "protanopia": np.array(
        [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
         [-0.003882, -0.048116, 1.051998]]
    ),
    "deuteranopia": np.array(
        [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
         [-0.011820, 0.042940, 0.968881]]
    ),
    "tritanopia": np.array(
        [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
         [0.004733, 0.691367, 0.303900]]
    ),
}  # fmt: skip


@pytest.mark.parametrize("vision", VISION)
def test_every_method_has_its_own_colour_for_colour_blind_readers_too(vision):
    import itertools

    from valf_study.report.colours import method_colour
    from valf_study.run.objective import LOSSES

    methods = [m for m in LOSSES if m != "VALF"] + ["VALF (r=0.01)", "VALF (r=1)"]
    colours = {m: method_colour(m) for m in methods}
    assert len(set(colours.values())) == len(methods)
    seen = {m: _lab(c, VISION[vision]) for m, c in colours.items()}
    seen["the page"] = _lab("#FFFFFF", VISION[vision])
    closest = min(np.linalg.norm(seen[a] - seen[b]) for a, b in itertools.combinations(seen, 2))
    assert closest >= 15, vision
    assert method_colour("CCE + oversampling") == colours["CCE"]


def test_the_paper_s_claims_are_each_checked_once():
    from valf_study.report.summary import _CHECKS
    from valf_study.studies.paper import read_fig4_claims, read_paper_claims

    claims = read_paper_claims()
    assert claims["id"].is_unique and len(claims) == 9
    fig4 = set(read_fig4_claims()["claim"])
    for check in claims["check"]:
        name, _, argument = check.partition(":")
        assert name in _CHECKS or (name == "fig4" and argument in fig4), check
