"""The pre-registered comparisons and the primary tests (valf_study.studies.comparisons) on small
made-up studies: two named intervals, five verdicts that agree with their intervals, the paper's
claims, the pooled primary tests against statsmodels, the gate, the A/A control, and the
study file's ``analysis: margin``."""

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats as scipy_stats
from sklearn.metrics import f1_score
from statsmodels.stats.multitest import multipletests

from valf_study import stats
from valf_study.report import tables
from valf_study.studies import comparisons as cmp
from valf_study.studies.results import load_results
from valf_study.studies.spec import StudyError, load_study

CLASS_NAMES = '["ACA", "NOR", "SCC"]'


def make_study(skill, seeds=3, images=30, dataset="lunghist700", same=None, groups=None, seed=0):
    """Runs and predictions: ``skill[(backbone, magnification, method)]`` is the accuracy of
    every seed's run (a number) or of each seed (a list). ``same[cell] = other`` gives a cell
    the very predictions of another, seed by seed. ``groups`` is the number of images per
    patient (the predictions' ``group``); each magnification has its own test images."""
    rng = np.random.default_rng(seed)
    labels = np.arange(images) % 3
    runs, predictions, made = [], [], {}
    for cell, accuracy in skill.items():
        backbone, magnification, method = cell
        accuracies = accuracy if isinstance(accuracy, list) else [accuracy] * seeds
        for run_seed, level in enumerate(accuracies):
            if same and cell in same:
                predicted = made[(*same[cell], run_seed)]
            else:
                right = rng.random(images) < level
                predicted = np.where(right, labels, (labels + rng.integers(1, 3, images)) % 3)
            made[(*cell, run_seed)] = predicted
            run_id = f"{method}-{backbone}-{magnification}-{run_seed}"
            runs.append(
                {
                    "run_id": run_id,
                    "status": "done",
                    "experiments": "main",
                    "dataset": dataset,
                    "backbone": backbone,
                    "magnification": magnification,
                    "method": method,
                    "seed": run_seed,
                    "split": "official",
                    "class_names": CLASS_NAMES,
                    "f1": f1_score(labels, predicted, labels=range(3), average="macro"),
                }
            )
            frame = pd.DataFrame(
                {
                    "run_id": run_id,
                    "split": "test",
                    "image_path": [f"{magnification}/i{i}" for i in range(images)],
                    "label": labels,
                    "predicted": predicted,
                }
            )
            if groups:
                frame["group"] = [f"{magnification}-p{i // groups}" for i in range(images)]
            predictions.append(frame)
    return pd.DataFrame(runs), pd.concat(predictions, ignore_index=True)


def per_seed(runs, backbone, magnification, method, comparator):
    cell = runs[(runs["backbone"] == backbone) & (runs["magnification"] == magnification)]
    ours = cell[cell["method"] == method].sort_values("seed")["f1"].to_numpy()
    theirs = cell[cell["method"] == comparator].sort_values("seed")["f1"].to_numpy()
    return ours - theirs


VERDICT_STUDY = {
    ("ResNet50", "20x", "VALF (r=0.01)"): 0.97,  # far ahead of FL: better
    ("ResNet50", "20x", "FL"): 0.55,
    ("ResNet50", "40x", "FL"): 0.8,
    ("ResNet50", "40x", "VALF (r=0.01)"): 0.8,  # the very predictions of FL: equivalent
    ("EfficientNetV2B3", "40x", "VALF (r=0.01)"): 0.5,  # far behind: worse
    ("EfficientNetV2B3", "40x", "FL"): 0.97,
    ("ConvNeXtTiny", "20x", "VALF (r=0.01)"): 0.8,  # like FL, where the paper claims +0.141
    ("ConvNeXtTiny", "20x", "FL"): 0.8,
    ("DenseNet121", "20x", "VALF (r=0.01)"): 0.75,  # like FL, where the paper claims nothing
    ("DenseNet121", "20x", "FL"): 0.78,
}
SAME = {("ResNet50", "40x", "VALF (r=0.01)"): ("ResNet50", "40x", "FL")}


@pytest.fixture(scope="module")
def verdicts():
    runs, predictions = make_study(VERDICT_STUDY, seeds=8, images=90, same=SAME, seed=3)
    found = cmp.analysis(runs, predictions, n_resamples=400, replicates=200)
    return runs, predictions, found


def test_each_comparison_has_two_intervals_each_about_its_own_estimand(verdicts):
    runs, _, found = verdicts
    table = found["comparisons"].set_index(["backbone", "magnification", "loss", "comparator"])
    row = table.loc[("ConvNeXtTiny", "20x", "VALF (r=0.01)", "FL")]
    differences = per_seed(runs, "ConvNeXtTiny", "20x", "VALF (r=0.01)", "FL")
    assert row["mean_diff"] == pytest.approx(differences.mean())
    # This test split: Student-t over the seeds, at the comparison's adjusted level.
    sem = differences.std(ddof=1) / np.sqrt(len(differences))
    half = scipy_stats.t.ppf(0.5 + row["ci_level"] / 2, len(differences) - 1) * sem
    assert (row["ci_split_low"], row["ci_split_high"]) == pytest.approx(
        (differences.mean() - half, differences.mean() + half)
    )
    assert row["estimand_split"] == cmp.ESTIMAND_SPLIT
    assert "new test data" in row["estimand_new"] and "this test split" in row["estimand_split"]
    # New test data: wider (the test data add their part), at the same level.
    assert row["ci_new_high"] - row["ci_new_low"] >= row["ci_split_high"] - row["ci_split_low"]
    assert (row["ci_low"], row["ci_high"]) == (row["ci_new_low"], row["ci_new_high"])
    assert (row["unit"], row["units"], row["seeds"], row["images"]) == ("image", 90, 8, 90)
    _, adjusted, _, _ = multipletests(found["comparisons"]["p_value"], method="holm")
    np.testing.assert_allclose(found["comparisons"]["p_adjusted"], adjusted)


def test_five_verdicts_each_agreeing_with_its_interval(verdicts):
    _, _, found = verdicts
    table = found["comparisons"]
    assert set(table["verdict"]) <= set(cmp.VERDICTS)
    by = table.set_index(["backbone", "magnification"])["verdict"].to_dict()
    assert by == {
        ("ResNet50", "20x"): "better",
        ("ResNet50", "40x"): "equivalent",
        ("EfficientNetV2B3", "40x"): "worse",
        ("ConvNeXtTiny", "20x"): "claim excluded",
        ("DenseNet121", "20x"): "inconclusive",
    }
    for row in table.itertuples():
        if row.verdict == "better":
            assert row.ci_new_low > 0 and row.p_adjusted < 0.05
        if row.verdict == "worse":
            assert row.ci_new_high < 0
        if row.verdict == "equivalent":
            assert -row.margin < row.equivalence_low <= row.equivalence_high < row.margin
        if row.verdict == "claim excluded":
            assert row.claim_upper < row.claim and row.p_claim_adjusted < 0.05
            assert row.ci_new_low < 0 < row.ci_new_high  # no difference shown either
    counts = cmp.count_verdicts(table)
    assert counts == dict.fromkeys(cmp.VERDICTS, 1)


def test_the_claims_are_the_paper_s_and_say_where_they_come_from(verdicts):
    _, _, found = verdicts
    table = found["comparisons"].set_index(["backbone", "magnification"])
    convnext = table.loc[("ConvNeXtTiny", "20x")]
    assert convnext["claim"] == pytest.approx(0.831 - 0.690)
    assert "Table 2" in convnext["claim_source"]
    densenet = table.loc[("DenseNet121", "20x")]  # the paper's VALF and FL tie here: no claim
    assert np.isnan(densenet["claim"]) and "not ahead" in densenet["claim_source"]
    # A backbone the paper does not have: its mean claimed gain at that magnification.
    claims = cmp.paper_claims()
    value, source = cmp._claim(claims, "SmallCNN", "40x", "CCE")
    expected = claims[(claims["magnification"] == "40x") & (claims["comparator"] == "CCE")]
    assert value == pytest.approx(expected["claim"].mean()) and "across its 5" in source


def test_studies_off_lunghist700_and_with_one_seed_still_compare():
    skill = {("SmallCNN", "all", m): a for m, a in [("VALF (r=0.01)", 0.8), ("CCE", 0.7)]}
    runs, predictions = make_study(skill, seeds=1, dataset="folder", groups=3)
    table = cmp.comparisons(runs, predictions, n_resamples=200, replicates=50)
    row = table.iloc[0]
    assert np.isnan(row["claim"]) and row["claim_source"].startswith("no claim")
    assert row["verdict"] in {"better", "worse", "equivalent", "inconclusive"}
    assert "one seed" in row["note"] and np.isnan(row["ci_split_low"])
    assert (row["unit"], row["units"]) == ("group", 10)
    assert np.isfinite(row["ci_new_low"]) and np.isnan(row["p_better"])


def test_patients_are_the_unit_on_lunghist700():
    skill = {("ResNet50", "20x", m): a for m, a in [("VALF (r=1)", 0.8), ("FL", 0.7)]}
    runs, predictions = make_study(skill, groups=6)
    row = cmp.comparisons(runs, predictions, n_resamples=200, replicates=50).iloc[0]
    assert (row["unit"], row["units"]) == ("patient", 5)
    assert "new patients" in row["estimand_new"]


def _grid(seed=0, valf=0.9):
    """Five backbones, two magnifications, the paper's losses and both readings of VALF."""
    skill = {}
    for backbone in ("ResNet50", "EfficientNetV2B3", "DenseNet121", "InceptionV3", "ConvNeXtTiny"):
        for magnification in ("20x", "40x"):
            for method, accuracy in [
                ("VALF (r=0.01)", valf),
                ("VALF (r=1)", 0.7),
                ("CCE", 0.7),
                ("WCCE", 0.68),
                ("FL", 0.7),
                ("DWFL", 0.66),
            ]:
                skill[(backbone, magnification, method)] = accuracy
    return make_study(skill, seeds=3, images=45, seed=seed)


@pytest.fixture(scope="module")
def grid():
    runs, predictions = _grid()
    return runs, predictions, cmp.analysis(runs, predictions, n_resamples=300, replicates=300)


def test_the_primary_tests_pool_the_settings_and_open_the_gates(grid):
    _, _, found = grid
    primary, table = found["primary"], found["comparisons"]
    assert len(table) == 10 * 2 * 2
    first = primary[primary["family"] == "primary"].set_index(["loss", "comparator"])
    assert len(first) == 4
    _, adjusted, _, _ = multipletests(first["p_value"], method="holm")
    np.testing.assert_allclose(first["p_adjusted"], adjusted)
    # Each pooled test is the random-effects mean of its per-setting comparisons.
    for (loss, comparator), row in first.iterrows():
        part = table[(table["loss"] == loss) & (table["comparator"] == comparator)]
        pooled = stats.random_effects(part["mean_diff"], part["standard_error"] ** 2)
        assert row["estimate"] == pytest.approx(pooled["estimate"])
        assert row["tau2"] == pytest.approx(pooled["tau2"])
        assert row["settings"] == 10
        assert row["pi_low"] <= row["ci_low"] <= row["estimate"] <= row["ci_high"] <= row["pi_high"]
        gate = "open" if row["significant"] else "closed"
        assert (part["gate"] == gate).all()
    assert first.loc[("VALF (r=0.01)", "FL"), "significant"]  # 0.9 against 0.7 everywhere
    assert first.loc[("VALF (r=0.01)", "FL"), "estimate"] > 0.1
    readings = primary[primary["family"] == "readings of eq. 7"].iloc[0]
    assert readings["loss"] == "VALF (r=1)" and readings["estimate"] < 0
    assert set(primary.columns) >= {"test", "estimate", "ci_low", "ci_high", "p_value"}
    assert primary["meaning"].str.len().min() > 20


def test_the_headline_names_the_paper_s_losses_the_study_ran():
    # A real-image study runs no DWFL: the headline compares VALF with the paper's losses it has.
    skill = {
        ("SmallCNN", magnification, method): accuracy
        for magnification in ("20x", "40x")
        for method, accuracy in [("VALF (r=0.01)", 0.8), ("CCE", 0.7), ("FL", 0.7)]
    }
    runs, predictions = make_study(skill, seeds=3, images=45)
    primary = cmp.analysis(runs, predictions, n_resamples=50, replicates=50)["primary"]
    headline = primary[primary["family"] == "headline (VALF (r=0.01))"].iloc[0]
    assert headline["comparator"] == "CCE, FL"
    assert "the paper's losses run here" in headline["meaning"]


def test_the_paper_s_headline_is_tested_from_the_runs(grid):
    runs, _, found = grid
    primary = found["primary"]
    friedman = primary[primary["test"].str.startswith("Friedman: VALF (r=0.01)")].iloc[0]
    means = runs.groupby(["backbone", "magnification", "method"])["f1"].mean().unstack()
    columns = ["VALF (r=0.01)", "CCE", "WCCE", "FL", "DWFL"]
    expected = scipy_stats.friedmanchisquare(*(means[c] for c in columns))
    assert (friedman["statistic"], friedman["p_value"]) == pytest.approx(tuple(expected))
    ranks = primary[primary["test"].str.startswith("rank: VALF (r=0.01)")]
    assert len(ranks) == 4 and (ranks["p_adjusted"] >= ranks["p_value"]).all()
    headline = primary[primary["family"] == "headline (VALF (r=0.01))"].iloc[0]
    assert headline["test"] == "VALF (r=0.01) best in ≥ 8 of 10 settings"
    best = means[columns].idxmax(axis=1).eq("VALF (r=0.01)").sum()
    assert headline["statistic"] == best == 10
    assert headline["comparator"] == "CCE, WCCE, FL, DWFL"  # the paper's losses this grid ran
    assert headline["estimate"] > 0.9  # far ahead: a rerun would say so too
    weak = primary[primary["family"] == "headline (VALF (r=1))"].iloc[0]
    assert weak["estimate"] < 0.2  # no better than the others: rarely best in 8 of 10
    cd = tables.critical_difference_table(found["friedman"])
    assert set(cd["valf_reading"]) == {"VALF (r=0.01)", "VALF (r=1)"}
    assert cd.groupby("valf_reading")["average_rank"].sum().tolist() == pytest.approx([15, 15])


def test_the_aa_control_compares_a_loss_with_itself():
    skill = {("ResNet50", "20x", "FL"): 0.8, ("ResNet50", "20x", "CCE"): 0.7}
    runs, predictions = make_study(skill, seeds=4)
    table = cmp.aa_control(runs, predictions, n_resamples=200)
    assert set(table["design"]) == {"halves"} and len(table) == 2
    assert table["seeds_a"].tolist() == ["0,1", "0,1"] and table["seeds_b"].tolist() == ["2,3"] * 2
    fl = table[table["method"] == "FL"].iloc[0]
    ours = per_seed(runs, "ResNet50", "20x", "FL", "FL")  # zeros: the f1 of each FL seed
    cell = runs[runs["method"] == "FL"].sort_values("seed")["f1"].to_numpy()
    assert fl["mean_diff"] == pytest.approx((cell[:2] - cell[2:]).mean()) and not ours.any()
    three = cmp.aa_control(*make_study(skill, seeds=3), n_resamples=100)
    assert set(three["design"]) == {"seed pair"} and len(three) == 2 * 3
    summary = cmp.aa_summary(pd.concat([table, three]))
    assert summary["comparisons"].sum() == 8 and (summary["low"] <= summary["rate"]).all()


def test_count_verdicts_refuses_an_unknown_verdict():
    with pytest.raises(ValueError, match="Unknown verdicts"):
        cmp.count_verdicts(pd.DataFrame({"verdict": ["VALF (r=1) better"]}))


# -- the study file's analysis block, the results folder ------------------------------------------


def _study_file(tmp_path, **extra):
    spec = {
        "data": {"dataset": "synthetic", "root": "data/synthetic"},
        "defaults": {"backbone": "SmallCNN", "weights": None, "epochs": 1},
        "experiments": {"main": {"grid": {"loss": ["CCE", "FL"], "seed": [0]}}},
        **extra,
    }
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_the_margin_comes_from_the_study_file(tmp_path):
    assert load_study(_study_file(tmp_path)).analysis == {"margin": 0.02, "controls": []}
    assert load_study(_study_file(tmp_path, analysis={"margin": 0.05})).analysis["margin"] == 0.05
    with pytest.raises(StudyError, match="margin must be a number between 0 and 1"):
        load_study(_study_file(tmp_path, analysis={"margin": "small"}))
    with pytest.raises(StudyError, match="unknown key"):
        load_study(_study_file(tmp_path, analysis={"alpha": 0.01}))


def test_results_written_before_the_primary_table_still_load(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    for name in ("runs", "history", "class_weights", "predictions", "comparisons"):
        pd.DataFrame({"run_id": ["a"]}).to_parquet(folder / f"{name}.parquet")
    (folder / "selections.json").write_text("{}")
    (folder / "MANIFEST.json").write_text("{}")
    tables_ = load_results("old", out=tmp_path)
    assert tables_["primary"].empty and len(tables_["runs"]) == 1


# -- positive controls -----------------------------------------------------------------------


def _control_study(strong):
    """Runs of two arms told apart by ``loss`` (CCE, WCCE) on one setting, WCCE right on a
    share ``strong`` of the images where CCE is right on 0.5."""
    runs, predictions = make_study(
        {("SmallCNN", "all", "CCE"): 0.5, ("SmallCNN", "all", "WCCE"): strong},
        seeds=5,
        images=300,
        dataset="mnist",
    )
    runs["loss"] = runs["method"]
    return runs, predictions


CONTROL = {
    "name": "class weights",
    "expect": "better",
    "treatment": {"loss": "WCCE"},
    "comparator": {"loss": "CCE"},
    "metrics": ["f1", "balanced_accuracy"],
}


def test_a_positive_control_is_detected_when_the_effect_is_there():
    runs, predictions = _control_study(0.9)
    table = cmp.control_tests(runs, predictions, [CONTROL])
    assert table["verdict"].tolist() == ["detected", "detected"]
    assert (table["ci_new_low"] > 0).all() and (table["p_adjusted"] < 0.05).all()
    assert table["seeds"].tolist() == [5, 5] and table["images"].tolist() == [300, 300]
    # The difference is the macro-F1 (and macro recall) of one arm minus the other's, by seed.
    expected = per_seed(runs, "SmallCNN", "all", "WCCE", "CCE").mean()
    assert table.loc[table["metric"] == "f1", "mean_diff"].item() == pytest.approx(expected)


def test_a_control_without_its_effect_is_not_detected_and_says_what_it_could_see():
    runs, predictions = _control_study(0.5)
    table = cmp.control_tests(runs, predictions, [CONTROL])
    assert set(table["verdict"]) <= {"not detected", "opposite"}
    row = table.iloc[0]
    assert row["detectable"] > 0 and f"{row['detectable']:.3f}" in row["meaning"]
    # Holm over the two: the adjusted p-values are statsmodels'.
    expected = multipletests(table["p_value"], method="holm")[1]
    np.testing.assert_allclose(table["p_adjusted"], expected)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"expect": "more"}, "must be better or worse"),
        ({"metrics": ["auc"]}, "must list metrics among"),
        ({"comparator": {"loss": "WCCE"}}, "the treatment and the comparator are the same"),
        ({"treatment": {"los": "WCCE"}}, "Unknown parameter `los`"),
        # An arm no run of `main` has would drop out of the results unseen.
        (
            {"treatment": {"loss": "WCCE", "imbalance_ratio": 10}},
            r"controls > 0 > treatment: no run of the experiment `main` has imbalance_ratio 10, "
            r"loss WCCE",
        ),
        ({"comparator": {"loss": "FL"}}, r"comparator: no run of the experiment `main`"),
    ],
)
def test_a_control_in_a_study_file_is_checked(tmp_path, change, message):
    spec = {
        "data": {"dataset": "synthetic", "root": "data"},
        "analysis": {"controls": [{**CONTROL, **change}]},
        "experiments": {"main": {"grid": {"loss": ["CCE", "WCCE"]}}},
    }
    path = tmp_path / "controlled.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(StudyError, match=message):
        load_study(path, tmp_path / "runs")
