"""`cardio validate` makes the configured split and counts each part's classes, and says what the run reads."""
import numpy as np
import pandas as pd

from cardio import Cohort
from cardio.config import core_defaults
from cardio.data.checks import cohort_problems, summary


def _cohort(n_pos: int, n_neg: int, root=None, files: bool = False) -> Cohort:
    n = n_pos + n_neg
    table = pd.DataFrame({"record_id": [f"r{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
                          "label": [1] * n_pos + [0] * n_neg})
    if files:
        for i in range(n):
            (root / f"r{i}.npy").write_bytes(b"x" * 1000)
        table["file"] = [f"r{i}.npy" for i in range(n)]
    return Cohort(table, root=root)


def _config(method: str, **cv) -> dict:
    config = core_defaults()
    config["cv"] = {**config["cv"], "method": method, **cv}
    return config


def test_a_holdout_test_part_without_two_patients_of_each_class_is_a_problem():
    """Ten patients, 8:1:1: the test part holds one patient, so DeLong has no variance (it failed at evaluate)."""
    problems = cohort_problems(_cohort(6, 6), _config("holdout", ratios=[8, 1, 1]))
    assert problems == ["the test part of holdout would hold 1 positive and 1 negative patients; it needs at least "
                        "2 of each (more patients, or other cv.ratios)"]
    (tiny,) = cohort_problems(_cohort(5, 5), _config("holdout", ratios=[8, 1, 1]))
    assert tiny.startswith("the split holdout cannot be made on 10 patients")
    assert cohort_problems(_cohort(30, 30), _config("holdout", ratios=[8, 1, 1])) == []


def test_kfold_parts_need_both_classes_and_pass_when_stratified():
    assert cohort_problems(_cohort(10, 20), _config("kfold", folds=5)) == []
    assert any("rarer outcome" in p for p in cohort_problems(_cohort(3, 20), _config("kfold", folds=5)))


def test_summary_counts_the_input_files_and_the_fits(tmp_path):
    config = _config("kfold", folds=5)
    config["cache_dir"] = str(tmp_path)
    text = summary(_cohort(10, 10, tmp_path, files=True), config)
    assert "input files: 20, 0.0 MB" in text and "fits per model: 5 fold(s) + the final model" in text
    assert "free at the cache" in text
    assert np.isfinite(float(text.split("free at the cache (")[1].split(": ")[1].split(" GB")[0].replace(",", "")))


def test_time_is_estimated_from_the_last_finished_run_in_the_cache(tmp_path):
    from cardio.data.checks import record_timing, time_estimate

    assert "no finished toy run in this cache" in time_estimate(tmp_path, "toy", 100, 6)
    record_timing(tmp_path, "toy", n_records=50, fits=6, elapsed_s=600.0, device="CPU x86_64 (2 logical cores)")
    text = time_estimate(tmp_path, "toy", 100, 3)  # twice the records, half the fits: the same time
    assert text.startswith("time: about 10 min") and "50 records and 6 fits" in text and "2 logical cores" in text
    (tmp_path / "timings" / "toy.json").write_text("{not json")
    assert "no finished toy run" in time_estimate(tmp_path, "toy", 100, 3)


def test_the_estimate_uses_a_run_of_the_same_settings_and_names_every_cost_setting_it_did_not_scale_for(tmp_path):
    """Issue 55: a profile=fast run in the cache gave "about 10 min" for a run that took an hour. The estimate now
    scales a run of the same cost settings; from a run of other settings it names each setting that differs (the
    profile, epochs, inner folds) and says that its basis is that run alone."""
    from cardio import config as config_mod
    from cardio.data.checks import fits_of, record_timing, time_estimate

    fast = config_mod.merge(config_mod.core_defaults(), {"profile": "fast", "train": {"epochs": 2}}, strict=False)
    slow = config_mod.merge(config_mod.core_defaults(), {"profile": "paper", "train": {"epochs": 50},
                                                         "cv": {"inner_folds": 3}, "seed": 7}, strict=False)
    record_timing(tmp_path, "toy", 300, fits_of(fast), 600.0, "CPU", fast)
    from_fast = time_estimate(tmp_path, "toy", 300, fits_of(slow), slow)
    assert "if the settings below cost nothing" in from_fast and "the estimate's basis is that run alone" in from_fast
    assert "3 setting(s) that drive cost differ" in from_fast  # the seed is not one of them
    assert 'profile "fast" -> "paper"' in from_fast and "train.epochs 2 -> 50" in from_fast
    assert "cv.inner_folds 0 -> 3" in from_fast and "profile fast" in from_fast
    record_timing(tmp_path, "toy", 300, fits_of(slow), 3600.0, "CPU", {**slow, "seed": 3})
    same = time_estimate(tmp_path, "toy", 300, fits_of(slow), slow)
    assert same.startswith("time: about 60 min") and "with these settings" in same and "differ" not in same
    # the fast run's timing is kept beside it: a fast run is estimated from it again
    assert time_estimate(tmp_path, "toy", 150, fits_of(fast), fast).startswith("time: about 5 min (")


def test_an_inner_training_part_without_both_classes_is_found_by_the_one_check_validate_and_the_run_make(tmp_path):
    """Issue 55: validate said "cohort OK" and the run stopped at fold0-inner2 (a modality missing patients of the
    cv.patients list leaves an inner fold's training part one-sided). The check every part's classes get (outer and
    inner, split_problems, called by validate and by the run before featurize) names that inner part."""
    from cardio.data import make_folds

    universe = pd.DataFrame({"patient_id": [f"p{i}" for i in range(24)], "label": [1] * 12 + [0] * 12})
    (tmp_path / "patients.csv").write_text(universe.to_csv(index=False))
    config = _config("kfold", folds=2, inner_folds=3, patients=str(tmp_path / "patients.csv"))
    # this modality has every responder but only two non-responders of the list (their scans missing)
    for seed in range(60):
        config["seed"] = seed
        cohort = _cohort(12, 0)
        cohort.table = pd.concat([cohort.table, pd.DataFrame({"record_id": ["r12", "r13"], "patient_id": ["p12", "p13"],
                                                              "label": [0, 0]})], ignore_index=True)
        folds = make_folds(cohort.table, config["cv"], "label", seed)
        negatives = {f.name: int((cohort.table["label"].iloc[f.train] == 0).sum()) for f in folds}
        inner = [i for f in folds for i in f.inner if (cohort.table["label"].iloc[i.train] == 0).sum() == 0]
        if min(negatives.values()) >= 1 and inner:
            break
    else:
        raise AssertionError("no seed gives an inner part without a negative while the outer parts have one")
    problems = cohort_problems(cohort, config)
    assert any(p.startswith(f"the training part of {inner[0].name} would hold") and "0 negative" in p
               for p in problems), problems
    assert not any(p.startswith("the training part of fold0 ") or p.startswith("the training part of fold1 ")
                   for p in problems), problems
