"""cardio fuse on three modalities of one cohort (the toy plugin's runs, each with its own planted drive):
fusion beats the best single modality where each carries its own part of response, scores chance when the
labels are permuted (the leak check; the neutral setting is benchmarks/fusion_leak.py's), falls back to the
modalities a patient has, and refuses runs that cannot be joined, listing every reason."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cardio import plugins
from cardio.config import plugin_settings, resolve
from cardio_fusion.synthetic import latent
from cardio_fusion.truth import TRUTH, stated_truth

MODALITIES = ["ecg", "spect", "echo"]
RUN = ("--set", "label=responder", "--set", "cv.folds=4", "--set", "cv.inner_folds=2", "--set", "train.epochs=10",
       "--set", "train.lr=0.01", "--set", "data.n_features=4", "--set", "final_model=false", "--set", "explain=false",
       "--set", "report.figures=false", "--set", "stats.n_resamples=500")


def _write(root: Path, setting: str, n: int, toy_site, *, permute: bool = False, missing: float = 0.0) -> None:
    """The multimodal cohort as cardio synthetic-crt writes it, each modality through the toy plugin's hook (the
    toy found on `toy_site` for this call only: a path left behind made later tests of the process see the toys)."""
    import sys

    sys.path.insert(0, str(toy_site))
    try:
        table, _ = latent(n, 5, MODALITIES, setting)
        if permute:  # one permutation for every modality: the runs still agree on each patient's label
            table["responder"] = np.random.default_rng(9).permutation(table["responder"].to_numpy())
        pm = plugins.select(plugins.get_plugin_manager(), "toy")
        cfg = resolve(plugins.info(pm, "toy").default_config, None, ("data.n_features=4", "data.signal=2.5"))
        rng = np.random.default_rng(1)
        for i, m in enumerate(MODALITIES):
            has = np.ones(n, bool) if i == 0 else rng.random(n) >= missing
            part = table.loc[has, ["patient_id", "responder", f"drive_{m}"]].rename(columns={f"drive_{m}": "drive"})
            pm.hook.cardio_write_synthetic(patients=part.reset_index(drop=True), dest=root / m, seed=i, config=cfg,
                                           settings=plugin_settings(plugins.info(pm, "toy"), cfg))
    finally:
        sys.path.remove(str(toy_site))
    table[["patient_id", "responder"]].to_csv(root / "patients.csv", index=False)
    clinical = pd.DataFrame({"patient_id": table["patient_id"], "lbbb": rng.integers(0, 2, n),
                             "qrs_ms": rng.normal(150, 20, n).round()})  # a guideline rule that knows nothing
    clinical.to_csv(root / "clinical.csv", index=False)


def _fused(cardio_cli, tmp_path: Path, setting: str, toy_site, name: str | None = None, **kw) -> dict:
    root = tmp_path / (name or setting)
    _write(root, setting, 200, toy_site, **kw)
    setting = name or setting
    runs, names = [], []
    for m in MODALITIES:
        out = f"{setting}-{m}"
        res = cardio_cli("run", "--plugin", "toy", "--out", out, "--set", f"cohort.dir={root / m}",
                         "--set", f"cv.patients={root / 'patients.csv'}", *RUN)
        assert res.returncode == 0, res.stderr[-2000:]
        runs.append(out)
        names += ["--name", f"{out}={m}"]
    res = cardio_cli("fuse", *runs, *names, "--out", f"{setting}-fused", "--clinical", str(root / "clinical.csv"),
                     "--guideline", "lbbb == 1 and qrs_ms >= 150")
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads((tmp_path / f"{setting}-fused" / "metrics.json").read_text())


def _auc(metrics: dict, model: str) -> dict:
    return next(e for e in metrics["estimates"] if e["model"] == model and e["metric"] == "auc"
                and e["method"] == "delong" and e["fold"] == "pooled" and e["section"] == "Performance")


def _test(metrics: dict, other: str) -> dict:
    return next(t for t in metrics["tests"] if {t["model_a"], t["model_b"]} == {"fused", other})


def test_fusion_adds_what_each_modality_carries_and_is_at_chance_without_labels(cardio_cli, tmp_path, toy_site):
    planted = _fused(cardio_cli, tmp_path, "planted", toy_site, missing=0.1)
    best = max(MODALITIES, key=lambda m: _auc(planted, m)["estimate"])
    assert _auc(planted, "fused")["estimate"] > _auc(planted, best)["estimate"]
    # 4 folds carry no cross-validated interval (it needs 5): the pooled paired DeLong test, extra.delong, as before
    assert _test(planted, best)["extra"]["delong"]["p_adjusted"] < 0.05  # Holm over the three pre-specified ones
    assert _test(planted, best)["extra"]["family"] == "reference"
    added = {e["metric"]: e for e in planted["estimates"]
             if e["metric"] in ("idi", "nri") and e["extra"]["over"] == best}
    assert added["idi"]["estimate"] > 0  # cross-validated, without an interval (docs/statistics.md)
    assert added["nri"]["ci_low"] is None and added["nri"]["extra"]["headline"] is False
    report = (tmp_path / "planted-fused" / "report.md").read_text()
    assert "modality combination" in report and "ecg+spect+echo" in report
    fused = pd.read_csv(tmp_path / "planted-fused" / "predictions.csv")
    combos = fused.loc[fused["model"] == "fused", "modalities"].value_counts()
    assert len(combos) > 1 and combos["ecg+spect+echo"] < 200  # patients missing a modality were fused anyway
    assert (tmp_path / "planted-fused" / "figures" / "decision_curve_fusion.png").exists()
    # the guideline rule, read from the clinical table by its input ids, joined through the project's pseudonyms
    assert set(fused.loc[fused["model"] == "guideline", "y_score"]) == {0.0, 1.0}
    assert _test(planted, "guideline")["extra"]["family"] == "reference"

    null = _fused(cardio_cli, tmp_path, "planted", toy_site, "null", permute=True)
    auc = _auc(null, "fused")
    assert auc["ci_low"] <= 0.5 <= auc["ci_high"], auc


def test_runs_that_cannot_be_joined_are_refused_with_every_reason(cardio_cli, tmp_path, toy_site):
    root = tmp_path / "c"
    _write(root, "planted", 60, toy_site)
    common = ("--set", "cv.folds=3", "--set", "train.epochs=1", "--set", "label=responder", "--set",
              "data.n_features=4", "--set", "final_model=false", "--set", "report.figures=false")
    a = cardio_cli("run", "--plugin", "toy", "--out", "a", "--set", f"cohort.dir={root / 'ecg'}",
                   "--set", "cv.inner_folds=2", *common)
    b = cardio_cli("run", "--plugin", "toy", "--out", "b", "--set", f"cohort.dir={root / 'spect'}", "--seed", "3",
                   *common)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    res = cardio_cli("fuse", "a", "b", "--out", "f")
    assert res.returncode == 2
    line = res.stderr.strip()
    assert line.count("\n") == 0 and "without cv.inner_folds" in line
    assert not (tmp_path / "f").exists()
    # another fold count (a run made with another cv.folds than the profile's): the exact --set that mends it
    c = cardio_cli("run", "--plugin", "toy", "--out", "two", "--set", f"cohort.dir={root / 'spect'}",
                   "--set", "cv.inner_folds=2", *common, "--set", "cv.folds=2")
    assert c.returncode == 0, c.stderr
    res = cardio_cli("fuse", "a", "two", "--out", "f")
    assert res.returncode == 2 and "two was split otherwise than a (cv.folds 2 there, 3 here)" in res.stderr
    assert "make two again with --set cv.folds=3" in res.stderr, res.stderr


def test_fuse_with_another_cache_names_the_runs_key_and_makes_none(cardio_cli, tmp_path, toy_site):
    """The runs' pseudonyms are made with their cache's key, which run.json names. cardio fuse under another cache
    ($CARDIO_CACHE elsewhere) once made a new key there and said the runs' patients were "not in cv.patients (patient
    ids edited, or a run of another cohort)"; without cv.patients the clinical table's guideline joined no patient and
    its row was left out without a word. It now names the key it lacks, in one line, and makes none; runs made under
    two keys are refused; a clinical table that lacks a patient is one line. The control: the same runs and command
    under the runs' cache fuse."""
    from cardio.data.pseudonyms import key_id, pseudonym_key

    root = tmp_path / "c"
    _write(root, "planted", 60, toy_site)
    common = ("--set", "cv.folds=3", "--set", "cv.inner_folds=2", "--set", "train.epochs=1", "--set",
              "label=responder", "--set", "data.n_features=4", "--set", "final_model=false", "--set",
              "report.figures=false", "--set", "explain=false")
    for m, cache in (("ecg", "cache"), ("spect", "cache"), ("echo", "other")):
        res = cardio_cli("run", "--plugin", "toy", "--out", m, "--set", f"cohort.dir={root / m}", *common,
                         env={"CARDIO_CACHE": str(tmp_path / cache)})
        assert res.returncode == 0, res.stderr[-2000:]
    recorded = json.loads((tmp_path / "ecg" / "run.json").read_text())["pseudonym_key"]
    assert recorded == key_id(pseudonym_key(tmp_path / "cache"))
    fuse = ("fuse", "ecg", "spect", "--name", "ecg=ecg", "--name", "spect=spect", "--out", "f", "--clinical",
            str(root / "clinical.csv"), "--guideline", "lbbb == 1 and qrs_ms >= 150")
    for cache, says in (("elsewhere", "does not exist"),
                        ("other", f"holds key {key_id(pseudonym_key(tmp_path / 'other'))}")):
        res = cardio_cli(*fuse, env={"CARDIO_CACHE": str(tmp_path / cache)})
        line = res.stderr.strip()
        assert res.returncode == 2 and line.count("\n") == 0, res.stderr
        assert f"ecg was pseudonymized with key {recorded} and {tmp_path / cache / 'pseudonym.key'} {says}" in line
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "f").exists()
    mixed = cardio_cli("fuse", "ecg", "echo", "--name", "ecg=ecg", "--name", "echo=echo", "--out", "f")
    assert mixed.returncode == 2 and "the runs were pseudonymized with different keys" in mixed.stderr, mixed.stderr
    assert cardio_cli(*fuse).returncode == 0
    fused = pd.read_csv(tmp_path / "f" / "predictions.csv")
    assert set(fused.loc[fused["model"] == "guideline", "y_score"]) == {0.0, 1.0}
    # a clinical table without some of the runs' patients: they once left the guideline's row (and, with covariates,
    # the fusion: an inner join) unsaid
    pd.read_csv(root / "clinical.csv").iloc[5:].to_csv(root / "short.csv", index=False)
    res = cardio_cli(*fuse[:7], "--out", "g", "--clinical", str(root / "short.csv"), *fuse[-2:])
    assert res.returncode == 2 and "short.csv: 5 of the runs' 60 patients have no row" in res.stderr, res.stderr
    assert not (tmp_path / "g").exists()


def test_a_fused_report_states_a_synthetic_crt_cohorts_truth_and_the_same_runs_without_it_do_not(cardio_cli, tmp_path,
                                                                                                 toy_site):
    """Two runs on the modality folders of a cohort with synthetic-crt's truth.json: the fusion's Cohort part states it
    as each run's does (truth.stated_truth); fused again with the truth.json moved away, the same runs state
    nothing and the checklist asks for the cohort's source."""
    root = tmp_path / "crt"
    _write(root, "planted", 60, toy_site)
    _, truth = latent(60, 5, MODALITIES, "planted")
    (root / TRUTH).write_text(json.dumps({**truth, "missing": {m: 0 for m in MODALITIES}}))
    common = ("--set", "cv.folds=3", "--set", "cv.inner_folds=2", "--set", "train.epochs=2", "--set",
              "label=responder", "--set", "data.n_features=4", "--set", "final_model=false", "--set", "explain=false",
              "--set", "report.figures=false", "--set", "stats.n_resamples=100")
    for m in ("ecg", "spect"):
        cardio_cli("run", "--plugin", "toy", "--out", m, "--set", f"cohort.dir={root / m}", *common, check=True)
    stated = stated_truth(root / "ecg")
    assert stated is not None and "Weights w: ecg 1.2, spect 1.2, echo 1.2" in stated
    assert stated in (tmp_path / "ecg" / "report.md").read_text()
    fuse = ("fuse", "ecg", "spect", "--name", "ecg=ecg", "--name", "spect=spect", "--n-resamples", "100")
    cardio_cli(*fuse, "--out", "with", check=True)
    (root / TRUTH).rename(root / "elsewhere.json")
    cardio_cli(*fuse, "--out", "without", check=True)
    with_truth, without = ((tmp_path / f / "report.md").read_text() for f in ("with", "without"))
    cohort_part = with_truth.split("\n## Cohort")[1].split("\n## ")[0]
    assert stated in cohort_part and "written by `cardio synthetic-crt`, its planted effects stated" in with_truth
    assert "synthetic-crt" not in without and "The cohort folder is in config.yaml" in without
    meta = {f: json.loads((tmp_path / f / "metrics.json").read_text()) for f in ("with", "without")}
    assert (meta["with"]["synthetic"], meta["with"]["truth"]) == (True, stated)
    assert (meta["without"]["synthetic"], meta["without"]["truth"]) == (False, None)
    # the same runs: every estimate of the two fusions is the same
    assert meta["with"]["estimates"] == meta["without"]["estimates"]


def test_a_noise_modality_gets_weight_zero_or_more_never_a_fitted_sign_flip():
    """Issue 38: the nested stacker's modality weights are >= 0 (cardio_stats.fit_stacker). On a neutral data set
    (the first modality carries response, the second is noise) the unconstrained fit gives the noise negative weight
    in some fold; the fusion cardio fuse runs never does, and still weighs the carrying modality."""
    from cardio_fusion.fuse import fuse_fold
    from cardio_testing.harness import load_script

    bench = load_script(Path(__file__).parents[2] / "benchmarks" / "crt_fusion.py")
    mods, folds = bench.simulated(3, 120, [3.0, 0.0])
    free = [c for f in folds for c in fuse_fold(mods, f, None, nonnegative=False)[1]]
    constrained = [c for f in folds for c in fuse_fold(mods, f, None)[1]]
    assert min(c["m1"] for c in free) < 0  # the check can fail: unconstrained, noise gets a sign
    assert min(c["m1"] for c in constrained) >= 0 and min(c["m0"] for c in constrained) > 0


def test_the_single_modality_rows_do_not_depend_on_the_stacker():
    """benchmarks/crt_fusion.py compares the two stackers' fused - first ΔAUC: both against one reference. On null
    data the first modality's inner slope is negative in about half the folds; its recalibrated row was fitted by
    each stacker, so the unconstrained one reversed its ranking there and the constrained one made it constant."""
    from cardio_fusion.fuse import fuse_fold
    from cardio_testing.harness import load_script

    bench = load_script(Path(__file__).parents[2] / "benchmarks" / "crt_fusion.py")
    mods, folds = bench.simulated(0, 100, [0.0, 0.0])
    rows = {nonneg: pd.concat([fuse_fold(mods, f, None, nonnegative=nonneg)[0] for f in folds]) for nonneg in
            (False, True)}
    single = {k: r[r["model"] != "fused"].reset_index(drop=True) for k, r in rows.items()}
    pd.testing.assert_frame_equal(single[False], single[True])
    fused = {k: r.loc[r["model"] == "fused", "y_score"].to_numpy() for k, r in rows.items()}
    assert not np.allclose(fused[False], fused[True])  # the stackers themselves still differ
