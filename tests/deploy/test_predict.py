"""The final model, its bundle and `cardio predict`; the fold ensemble (`--ensemble folds`); targets a new cohort
cannot evaluate; overlap with the training cohort by id, features and file content; the pseudonym key; TensorBoard
event files."""
import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cardio import CardioError, PluginInfo, hookimpl
from cardio_testing.harness import check_refused

# no figures: these tests read bundles, predictions and the reports' text (cardio predict draws its report's figures
# as the run's config says)
RUN = ("run", "--plugin", "toy", "--out", "a", "--set", "train.epochs=3", "--set", "report.figures=false")


@pytest.fixture(scope="module")
def trained(toy_site, tmp_path_factory) -> Path:
    """Site A's run at one epoch, made once for the tests that only read or damage its bundle: each works on a copy
    (`_site_a`), as if it had run the command itself."""
    from cardio_testing.harness import invoke

    root = tmp_path_factory.mktemp("site_a")
    with pytest.MonkeyPatch.context() as m:
        m.chdir(root)
        m.setenv("CARDIO_CACHE", str(root / "cache"))
        m.syspath_prepend(str(toy_site))
        result = invoke(*RUN, "--set", "train.epochs=1")
    assert result.exit_code == 0, result.stderr[-3000:]
    return root / "a"


def _site_a(trained: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "a", symlinks=True))


def _site_b(toy_site, tmp_path, seed=7, labelled=True, prefix="b"):
    """A second site: the toy cohort generated with another seed, its ids prefixed, written as a cohort folder."""
    sys.path.insert(0, str(toy_site))
    try:
        from cardio_toy.plugin import synthetic_table
    finally:
        sys.path.remove(str(toy_site))
    d = yaml.safe_load((toy_site / "cardio_toy" / "config.yaml").read_text())["data"]
    table = synthetic_table(d, seed).assign(site="B")
    table = table.assign(record_id=prefix + table["record_id"], patient_id=prefix + table["patient_id"])
    if not labelled:
        table = table.drop(columns=["label"])
    folder = tmp_path / f"site_b_{seed}_{int(labelled)}"
    folder.mkdir()
    table.to_csv(folder / "cohort.csv", index=False)
    return folder, table


def test_round_trip_site_a_to_site_b(cardio_cli, toy_site, tmp_path):
    cardio_cli(*RUN, "--set", "train.keep_checkpoints=true", "--set", "fold_models=true",
               check=True)  # the final fit's checkpoint, read below; the fold models, opt-in
    run = tmp_path / "a"
    model = run / "model"
    assert sorted(p.name for p in model.iterdir()) == ["bundle.json", "config.yaml", "folds", "params.json",
                                                       "weights.safetensors"]
    info = json.loads((model / "bundle.json").read_text())
    assert info["plugin"] == "toy" and info["n_patients"] == 60 and info["versions"]["torch"]
    assert info["cardio_version"] and info["plugin_version"] == "0.0.1"
    assert json.loads((model / "params.json").read_text()) == {"n_features": 16, "hidden": 32}
    modes = {stat.S_IMODE(p.stat().st_mode) for p in model.rglob("*") if p.is_file()}  # fold models too
    assert len(modes) == 1  # the weights are as readable as the rest of the run (safetensors alone makes them 0600)
    # the final fit has its own checkpoint, history and log lines
    assert (run / "checkpoints" / "final-mlp.pt").is_file()
    assert list(pd.read_csv(run / "history" / "final-mlp.csv")["epoch"]) == [1, 2, 3]
    assert "final-mlp epoch 3/3" in (run / "run.log").read_text()
    assert json.loads((run / "metrics.json").read_text())["final_model"]["n_patients"] == 60

    folder, table = _site_b(toy_site, tmp_path)
    cardio_cli("predict", "--model", "a", "--cohort", str(folder), "--out", "b", check=True)
    out = tmp_path / "b"
    pred = pd.read_csv(out / "predictions.csv")
    assert len(pred) == len(table) and pred["patient_id"].str.fullmatch(r"P[0-9A-F]{12}").all()
    assert set(pred["fold"]) == {"external"}
    metrics = json.loads((out / "metrics.json").read_text())
    auc = [e for e in metrics["estimates"] if e["metric"] == "auc" and e["method"] == "delong"
           and e["fold"] == "pooled" and e["subgroup"] is None]
    assert len(auc) == 1 and auc[0]["ci_low"] > 0.5 and auc[0]["n"] == 120  # the planted signal reaches site B
    assert {"calibration_slope", "brier"} <= {e["metric"] for e in metrics["estimates"]}
    report = (out / "report.md").read_text()
    assert "## External validation" in report and "fitted on all 60 patients" in report
    # titled for what it is, not as a run (issue 55)
    assert report.startswith("# External validation of a toy model\n") and "cardio run:" not in report
    assert "<h1>External validation of a toy model</h1>" in (out / "report.html").read_text()
    assert (run / "report.md").read_text().startswith("# cardio run: toy\n")
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "finished" and meta["kind"] == "predict"
    assert meta["model_bundle"]["weights_sha256"] == info["weights_sha256"]

    # the scores are those of the final model's own weights (the engine's checkpoint), to float32 precision
    import torch

    from cardio.engine import load_checkpoint

    weights = load_checkpoint(run / "checkpoints" / "final-mlp.pt")["model"]
    net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    net.load_state_dict(weights)
    x = torch.tensor(table[[f"x{i}" for i in range(16)]].to_numpy(np.float32))
    expected = torch.sigmoid(net(x)).detach().numpy().reshape(-1)
    assert np.allclose(pred["y_score"].to_numpy(), expected, atol=1e-6)  # rows keep the cohort's order


def test_unlabelled_cohort_gets_predictions_only(cardio_cli, toy_site, trained, tmp_path):
    _site_a(trained, tmp_path)
    folder, table = _site_b(toy_site, tmp_path, labelled=False)
    cardio_cli("predict", "--model", "a", "--cohort", str(folder), "--out", "b", check=True)
    pred = pd.read_csv(tmp_path / "b" / "predictions.csv")
    assert len(pred) == len(table) and pred["y_true"].isna().all() and pred["y_score"].between(0, 1).all()
    assert not (tmp_path / "b" / "metrics.json").exists()


class Trojan:
    """Unpickling this writes a marker file: a bundle loader that unpickles would leave it behind."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _refused(cardio_cli, tmp_path, must_name):
    before = {p: p.read_bytes() for p in (tmp_path / "a").rglob("*") if p.is_file()}
    proc = cardio_cli("predict", "--model", "a", "--cohort", str(tmp_path / "a"), "--out", "b")
    check_refused(proc, must_name)
    assert {p: p.read_bytes() for p in (tmp_path / "a").rglob("*") if p.is_file()} == before


def test_damaged_or_foreign_bundles_are_one_line_and_never_unpickled(cardio_cli, trained, tmp_path):
    _site_a(trained, tmp_path)
    model = tmp_path / "a" / "model"
    good = {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()}
    marker = tmp_path / "unpickled"

    # a pickle in place of the weights, its checksum updated so that the reader gets as far as parsing it
    payload = pickle.dumps(Trojan(marker))
    (model / "weights.safetensors").write_bytes(payload)
    _refused(cardio_cli, tmp_path, "weights.safetensors does not match its checksum")
    info = json.loads(good["bundle.json"])
    import hashlib

    info["weights_sha256"] = info["files"]["weights.safetensors"] = hashlib.sha256(payload).hexdigest()
    (model / "bundle.json").write_text(json.dumps(info))
    _refused(cardio_cli, tmp_path, "is not a readable safetensors file")
    assert not marker.exists()

    for name, content in good.items():
        (model / name).write_bytes(content)
    (model / "bundle.json").write_text("{not json")
    _refused(cardio_cli, tmp_path, "bundle.json is not valid JSON")
    (model / "bundle.json").write_text(json.dumps({**json.loads(good["bundle.json"]), "format": "other/9"}))
    _refused(cardio_cli, tmp_path, "is not a cardio-bundle/1 bundle")
    (model / "bundle.json").write_text(json.dumps({**json.loads(good["bundle.json"]), "plugin": "spect_polar"}))
    _refused(cardio_cli, tmp_path, "is a bundle of plugin 'spect_polar'")
    (model / "bundle.json").write_bytes(good["bundle.json"])
    (model / "params.json").unlink()
    _refused(cardio_cli, tmp_path, "lacks params.json")


def test_a_run_without_a_bundle_and_a_missing_cohort_are_one_line(cardio_cli, tmp_path):
    cardio_cli(*RUN, "--set", "train.epochs=1", "--set", "final_model=false", check=True)
    assert not (tmp_path / "a" / "model").exists() and not (tmp_path / "a" / "history" / "final-mlp.csv").exists()
    _refused(cardio_cli, tmp_path, "holds no model bundle")
    # the null control's model has learnt permuted labels: no bundle of it
    cardio_cli("run", "--plugin", "toy", "--out", "null", "--set", "train.epochs=1", "--set",
               "cohort.permute_labels=true", check=True)
    assert not (tmp_path / "null" / "model").exists()
    assert "final model not fitted: the null control" in (tmp_path / "null" / "run.log").read_text()
    proc = cardio_cli("predict", "--model", str(tmp_path), "--cohort", "x")
    check_refused(proc, "is not a cardio run directory")


def test_listing_says_which_plugins_can_predict(cardio_cli):
    lines = cardio_cli("plugins", check=True).stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("toy "))
    assert lines[at + 2].split() == ["cardio", "predict:", "yes"]
    rows = {r["name"]: r for r in json.loads(cardio_cli("plugins", "--json", check=True).stdout)}
    assert rows["toy"]["bundle"] is None and rows["toy_addon"]["bundle"] is None


def test_a_plugin_that_cannot_export_skips_the_final_fit_and_predict_refuses(toy_site, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(toy_site))
    monkeypatch.setenv("CARDIO_CACHE", str(tmp_path / "cache"))
    from cardio_deploy.predict import predict_cohort
    from cardio_testing.harness import run_plugin
    from cardio_toy import plugin as toy

    class Opaque:  # the toy's stages, under another name, without the export and import hooks
        @staticmethod
        @hookimpl
        def cardio_plugin_info():
            return PluginInfo(name="opaque", modality="toy", description="no bundle",
                              default_config=toy.cardio_plugin_info().default_config)

    for name in ("cardio_load", "cardio_featurize", "cardio_train", "cardio_predict"):
        setattr(Opaque, name, staticmethod(getattr(toy, name)))
    run = run_plugin("opaque", tmp_path / "a", ["train.epochs=1"], register=[Opaque])
    assert not (run / "model").exists() and not (run / "checkpoints" / "final-mlp.pt").exists()
    assert "final model not fitted: the plugin does not implement cardio_export_model" in (run / "run.log").read_text()
    with pytest.raises(CardioError, match="cannot apply a trained model to a new cohort: the plugin does not"):
        predict_cohort(str(run), str(tmp_path), register=[Opaque])


def test_pseudonym_key_is_owner_only_beside_the_run_and_never_named(cardio_cli, toy_site, tmp_path):
    proc = cardio_cli(*RUN, "--set", "train.epochs=1", "--set", "report.keep_key=true", check=True)
    key_path = tmp_path / "a.key.csv"
    assert key_path.is_file() and stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert "a.key.csv" in proc.stderr  # the user is told where it is, on the terminal only
    key = pd.read_csv(key_path)
    pred = pd.read_csv(tmp_path / "a" / "predictions.csv")
    assert len(key) == 120 and set(key["pseudonym_record_id"]) == set(pred["record_id"])
    pairs = dict(zip(key["pseudonym_record_id"], key["record_id"]))
    # the key maps back to the toy's own ids: a record's patient is the id before "-r"
    assert all(pairs[r].split("-r")[0] == dict(zip(key["pseudonym_patient_id"], key["patient_id"]))[p]
               for r, p in zip(pred["record_id"], pred["patient_id"]))
    assert {v.split("-r")[0] for v in key["record_id"]} == {f"p{i}" for i in range(60)}
    for f in (tmp_path / "a").rglob("*"):
        if f.is_file() and f.suffix in (".md", ".html", ".json", ".log", ".csv", ".yaml"):
            assert "key.csv" not in f.read_text(errors="ignore"), f
    # the model's config never turns a key file on: the user asks for one with --keep-key
    folder, _ = _site_b(toy_site, tmp_path)
    cardio_cli("predict", "--model", "a", "--cohort", str(folder), "--out", "b", check=True)
    assert not (tmp_path / "b.key.csv").exists()
    cardio_cli("predict", "--model", "a", "--cohort", str(folder), "--out", "b2", "--keep-key", check=True)
    assert stat.S_IMODE(os.stat(tmp_path / "b2.key.csv").st_mode) == 0o600
    # an existing key file is never replaced, by run or predict: refused before anything is written
    (tmp_path / "b3.key.csv").write_text("someone's key")
    proc = cardio_cli("predict", "--model", "a", "--cohort", str(folder), "--out", "b3", "--keep-key")
    check_refused(proc, "b3.key.csv already exists")
    proc = cardio_cli(*RUN[:4], "b3", "--set", "report.keep_key=true")
    check_refused(proc, "b3.key.csv already exists")
    assert (tmp_path / "b3.key.csv").read_text() == "someone's key" and not (tmp_path / "b3").exists()
    # off by default
    cardio_cli("run", "--plugin", "toy", "--out", "c", "--set", "train.epochs=1", "--set", "final_model=false",
               "--set", "report.figures=false", check=True)
    assert not (tmp_path / "c.key.csv").exists()


def test_tensorboard_asked_for_without_the_extra_is_one_line_before_any_stage(cardio_cli, tmp_path, monkeypatch):
    """TensorBoard is an extra (cardio-crt[tensorboard]), not a core dependency: a run that asks for its event files
    where it is not installed stops before writing anything, naming the install line and the way out."""
    import importlib.util

    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else found(name, *a))
    res = cardio_cli("run", "--plugin", "toy", "--out", "a", "--set", "train.tensorboard=true")
    check_refused(res, "train.tensorboard")
    assert "cardio-crt[tensorboard]" in res.stderr and "-m pip install" in res.stderr, res.stderr
    assert not (tmp_path / "a").exists()


def test_tensorboard_event_files_per_fit(cardio_cli, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cardio_cli("run", "--plugin", "toy", "--out", "a", "--set", "train.epochs=2", "--set", "cv.method=holdout",
               "--set", "train.tensorboard=true", check=True)
    board = tmp_path / "a" / "tensorboard"
    assert sorted(p.name for p in board.iterdir()) == ["final-mlp", "holdout-mlp"]
    for tag in ("final-mlp", "holdout-mlp"):
        events = EventAccumulator(str(board / tag))
        events.Reload()
        loss = events.Scalars(f"{tag}/train_loss")
        assert [e.step for e in loss] == [1, 2] and all(np.isfinite(e.value) for e in loss)
        assert [e.step for e in events.Scalars(f"{tag}/lr")] == [1, 2]
    cardio_cli("run", "--plugin", "toy", "--out", "b", "--set", "train.epochs=1", "--set", "cv.method=holdout",
               check=True)
    assert not (tmp_path / "b" / "tensorboard").exists()


def test_engine_imports_tensorboard_only_when_asked():
    code = "import sys, cardio.engine, cardio.execution.run; sys.exit('tensorboard' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# --------------------------------------------------------------------------- scikit-learn objects in a bundle

SKLEARN_TRUSTED = ("sklearn.pipeline.Pipeline", "sklearn.compose._column_transformer.ColumnTransformer",
                   "sklearn.impute._base.SimpleImputer", "sklearn.preprocessing._data.StandardScaler",
                   "sklearn.preprocessing._encoders.OneHotEncoder", "sklearn.linear_model._logistic.LogisticRegression")


def _fitted_pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    x = pd.DataFrame({"qrs": rng.normal(150, 20, 60), "sex": rng.choice(["F", "M"], 60)})
    x.loc[3, "qrs"] = np.nan
    y = (x["qrs"].fillna(150) > 150).astype(int)
    prep = ColumnTransformer([("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["qrs"]),
                              ("cat", OneHotEncoder(handle_unknown="ignore"), ["sex"])])
    return Pipeline([("prep", prep), ("model", LogisticRegression())]).fit(x, y), x


def test_sklearn_arrays_round_trip_a_pipeline_without_pickle():
    import torch

    from cardio_sklearn import sklearn_from_array, sklearn_to_array

    pipe, x = _fitted_pipeline()
    arr = sklearn_to_array(pipe)
    assert arr.dtype == np.uint8 and arr.ndim == 1 and arr[:2].tobytes() == b"PK"  # skops' zip, not a pickle
    for given in (arr, torch.from_numpy(arr)):  # as written, and as the bundle reads it back (a tensor)
        again = sklearn_from_array(given, SKLEARN_TRUSTED)
        assert np.array_equal(again.predict_proba(x), pipe.predict_proba(x))


def test_sklearn_arrays_refuse_types_outside_the_allow_list_before_loading(monkeypatch):
    import skops.io
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from cardio_sklearn import sklearn_from_array, sklearn_to_array

    def never(*a, **k):
        raise AssertionError("skops.io.loads was called on a refused array")

    monkeypatch.setattr(skops.io, "loads", never)
    evil = sklearn_to_array(make_pipeline(FunctionTransformer(os.system)))
    with pytest.raises(CardioError, match=rf"holds type\(s\) outside the plugin's allow-list, refused without "
                                          rf"loading: .*{os.system.__module__}\.system") as e:
        sklearn_from_array(evil, SKLEARN_TRUSTED, what="array 'x'")
    assert str(e.value).startswith("array 'x' ") and "\n" not in str(e.value)
    # skops trusts every scikit-learn estimator by default; the allow-list is stricter: only what the plugin names
    pipe, _ = _fitted_pipeline()
    with pytest.raises(CardioError, match=r"sklearn\.linear_model\._logistic\.LogisticRegression$"):
        sklearn_from_array(sklearn_to_array(pipe), [t for t in SKLEARN_TRUSTED if not t.endswith("Regression")])
    for bad, why in ((np.frombuffer(b"garbage", np.uint8), "not a readable skops file"),
                     (np.zeros(4, np.float32), "not a skops byte array")):
        with pytest.raises(CardioError, match=why):
            sklearn_from_array(bad, SKLEARN_TRUSTED)



def test_sklearn_arrays_without_skops_are_one_line_naming_the_service(monkeypatch):
    """skops is the scikit-learn service's dependency: where it is missing, writing or reading a scikit-learn object in
    a bundle is one CardioError with the install line, not an ImportError's traceback."""
    import sys

    from cardio_sklearn import sklearn_from_array, sklearn_to_array

    pipe, _ = _fitted_pipeline()
    arr = sklearn_to_array(pipe)
    monkeypatch.setitem(sys.modules, "skops.io", None)  # `import skops.io` raises ImportError, as when not installed
    for call in (lambda: sklearn_to_array(pipe), lambda: sklearn_from_array(arr, SKLEARN_TRUSTED)):
        with pytest.raises(CardioError, match=r"need skops, which is not installed: .* -m pip install "
                                              r"cardio-crt-sklearn$") as e:
            call()
        assert "\n" not in str(e.value)

def test_a_bundle_is_used_only_as_exported_and_never_widens_what_the_user_allowed(cardio_cli, toy_site, trained,
                                                                                  tmp_path):
    """Issue 27 item 3: every file is in the manifest; the bundle's config cannot allow outside paths, move the
    cache or write a key file."""
    _site_a(trained, tmp_path)
    model = tmp_path / "a" / "model"
    good = {p.name: p.read_bytes() for p in model.iterdir() if p.is_file()}
    params = json.loads(good["params.json"])
    (model / "params.json").write_text(json.dumps({**params, "hidden": params["hidden"] + 0, "threshold": 0.0}))
    _refused(cardio_cli, tmp_path, "params.json does not match its checksum")
    (model / "params.json").write_bytes(good["params.json"])
    (model / "extra.py").write_text("print('hi')")
    _refused(cardio_cli, tmp_path, "holds files it was not exported with: extra.py")
    (model / "extra.py").unlink()
    # a config edited to widen the path guard, move the cache and keep a key: refused as an edit ...
    config = yaml.safe_load(good["config.yaml"])
    config["cohort"]["allow_outside_paths"] = True
    config["cache_dir"] = str(tmp_path / "elsewhere")
    config["report"]["keep_key"] = True
    (model / "config.yaml").write_text(yaml.safe_dump(config))
    _refused(cardio_cli, tmp_path, "config.yaml does not match its checksum")
    # ... and even a bundle whose manifest was rewritten to match gets the user's values, not its own
    import hashlib

    info = json.loads(good["bundle.json"])
    info["files"]["config.yaml"] = hashlib.sha256((model / "config.yaml").read_bytes()).hexdigest()
    (model / "bundle.json").write_text(json.dumps(info))
    folder, _ = _site_b(toy_site, tmp_path)
    cardio_cli("predict", "--model", "a", "--cohort", str(folder), "--out", "b", check=True)
    used = yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())
    assert used["cohort"]["allow_outside_paths"] is False and used["cache_dir"] != str(tmp_path / "elsewhere")
    assert used["report"]["keep_key"] is False and not (tmp_path / "b.key.csv").exists()
    assert not (tmp_path / "elsewhere").exists()
    # the user's own --set reaches the model's config, checked like a run's
    proc = cardio_cli("predict", "--model", "a", "--cohort", str(folder), "--out", "c", "--set", "nope.x=1")
    check_refused(proc, "unknown config key nope")


def test_a_cohort_that_overlaps_the_training_one_is_not_called_external(cardio_cli, toy_site, trained, tmp_path):
    """Issue 26 item 4: training patients given back as a 'new site' are found by id or by content (salted
    fingerprints in the bundle, no id), and the report says it is not an external validation."""
    _site_a(trained, tmp_path)
    info = json.loads((tmp_path / "a" / "model" / "bundle.json").read_text())
    prints = info["training_fingerprints"]
    assert len(prints["ids"]) == 120 and "p0-r0" not in json.dumps(info)  # fingerprints only, no ids
    folder, table = _site_b(toy_site, tmp_path, seed=0, prefix="")  # the training cohort itself
    cardio_cli("predict", "--model", "a", "--cohort", str(folder), "--out", "same", check=True)
    meta = json.loads((tmp_path / "same" / "metrics.json").read_text())
    assert meta["overlap_with_training"]["same_id"] == 120 and meta["kind"].startswith("validation on records")
    assert "Not an external validation" in (tmp_path / "same" / "report.md").read_text()
    assert (tmp_path / "same" / "report.md").read_text().startswith("# Validation on records the model was trained on")
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    table.assign(record_id="x" + table["record_id"], patient_id="x" + table["patient_id"]).to_csv(
        renamed / "cohort.csv", index=False)  # new ids, the same records
    cardio_cli("predict", "--model", "a", "--cohort", str(renamed), "--out", "renamed_out", check=True)
    shared = json.loads((tmp_path / "renamed_out" / "metrics.json").read_text())["overlap_with_training"]
    assert shared["same_id"] == 0 and shared["same_content"] == 120
    other, _ = _site_b(toy_site, tmp_path, seed=7)
    cardio_cli("predict", "--model", "a", "--cohort", str(other), "--out", "b", check=True)
    meta = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert meta["kind"] == "external validation" and meta["overlap_with_training"]["same_content"] == 0
    text = (tmp_path / "b" / "report.md").read_text()
    assert "run `a`" in text and "applied unchanged to the cohort in" in text
    assert "nothing cross-validated" in text and "Out-of-fold" not in text and "training folds" not in text



def test_a_bundle_without_training_fingerprints_says_the_overlap_is_unknown(cardio_cli, toy_site, trained, tmp_path):
    """A bundle that carries no fingerprints of its training records (an older cardio's, or one exported without the
    deploy service) cannot tell a cohort that shares them: the report says the overlap is unknown, never that none
    of its records matches (it did so in silence, here on the training cohort itself)."""
    _site_a(trained, tmp_path)
    model = tmp_path / "a" / "model"
    info = json.loads((model / "bundle.json").read_text())
    del info["training_fingerprints"]  # bundle.json is not in its own manifest: the bundle still checks
    (model / "bundle.json").write_text(json.dumps(info))
    folder, _ = _site_b(toy_site, tmp_path, seed=0, prefix="")  # the training cohort itself
    proc = cardio_cli("predict", "--model", "a", "--cohort", str(folder), "--out", "same", check=True)
    meta = json.loads((tmp_path / "same" / "metrics.json").read_text())
    assert meta["overlap_with_training"] is None and meta["kind"] == "validation on a new cohort"
    report = (tmp_path / "same" / "report.md").read_text()
    assert report.startswith("# Validation on a new cohort of a toy model\n")
    assert "None of its records matches" not in report and "### External validation" not in report
    assert "External validation" not in report  # the summary's Design line claimed it for every prediction
    assert "its overlap with the training cohort is unknown" in report
    assert "carries no fingerprints of its training records" in report
    assert "carries no fingerprints of its training records" in proc.stderr


def test_without_the_deploy_service_a_bundle_keeps_no_fingerprints_and_predict_calls_the_overlap_unknown(
        cardio_cli, toy_site, tmp_path):
    """The training records' fingerprints are the deploy service's to keep (cardio_deploy.fingerprints, through the
    kernel's hook cardio_training_fingerprints): a run without it exports a bundle with none, run.log says so, and
    predict on that bundle calls the overlap unknown, even on the training cohort itself."""
    from cardio import services

    deploy = services.installed().pm.unregister(name="deploy")
    try:
        cardio_cli(*RUN, "--set", "train.epochs=1", check=True)
    finally:
        services.installed().pm.register(deploy, name="deploy")
    assert json.loads((tmp_path / "a" / "model" / "bundle.json").read_text())["training_fingerprints"] is None
    assert ("the bundle carries no fingerprints of its training records: they are kept by the deploy service "
            "(cardio-crt-deploy), not installed") in (tmp_path / "a" / "run.log").read_text()
    folder, _ = _site_b(toy_site, tmp_path, seed=0, prefix="")  # the training cohort itself
    cardio_cli("predict", "--model", "a", "--cohort", str(folder), "--out", "same", check=True)
    meta = json.loads((tmp_path / "same" / "metrics.json").read_text())
    assert meta["overlap_with_training"] is None and meta["kind"] == "validation on a new cohort"

# --------------------------------------------------------------------------- the fold ensemble (issue 41)

FOLDS = [f"fold{i}" for i in range(5)]


def _toy_net(state):
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    net.load_state_dict(state.tensors)
    return net


def test_the_fold_ensemble_is_the_mean_of_the_fold_models_compared_with_the_final_model(cardio_cli, toy_site,
                                                                                       tmp_path):
    import torch

    from cardio_deploy import bundle

    cardio_cli(*RUN, "--set", "train.epochs=1", "--set", "fold_models=true", check=True)
    info = json.loads((tmp_path / "a" / "model" / "bundle.json").read_text())
    assert info["folds"] == FOLDS and info["folds_bytes"] > 0
    assert {f"folds/{f}/{name}" for f in FOLDS for name in ("weights.safetensors", "params.json")} <= set(info["files"])
    folder, table = _site_b(toy_site, tmp_path)
    cardio_cli("predict", "--model", "a", "--cohort", str(folder), "--out", "b", "--ensemble", "folds", check=True)
    cardio_cli("predict", "--model", "a", "--cohort", str(folder), "--out", "f", check=True)  # the default: final
    pred, final = (pd.read_csv(tmp_path / d / "predictions.csv") for d in ("b", "f"))
    # each fold model's own probabilities, from its weights in the bundle, averaged
    _, _, _ = bundle.read(tmp_path / "a")
    states = bundle.read_folds(tmp_path / "a", info)
    x = torch.tensor(table[[f"x{i}" for i in range(16)]].to_numpy(np.float32))
    expected = np.mean([torch.sigmoid(_toy_net(s)(x)).detach().numpy().reshape(-1) for s in states.values()], 0)
    assert np.allclose(pred["y_score"].to_numpy(), expected, atol=1e-6) and (pred["n_fold_models"] == 5).all()
    assert not np.allclose(pred["y_score"], final["y_score"], atol=1e-3)  # five other models, not the final one
    assert json.loads((tmp_path / "b" / "run.json").read_text())["ensemble"] == "folds"
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["ensemble"] == "folds" and metrics["fold_models"] == FOLDS
    section = [e for e in metrics["estimates"] if e["section"] == "Fold ensemble against the final model"]
    by_model = {e["model"]: e for e in section}
    assert set(by_model) == {"mlp (fold ensemble)", "mlp (final model)"}
    assert all(e["method"] == "delong-score" and e["n"] == 120 for e in section)
    # the final model's AUC in the comparison is the one a final-model prediction reports on its own
    alone = [e for e in json.loads((tmp_path / "f" / "metrics.json").read_text())["estimates"]
             if e["metric"] == "auc" and e["method"] == "delong-score" and e["subgroup"] is None]
    assert by_model["mlp (final model)"]["estimate"] == pytest.approx(alone[0]["estimate"])
    assert by_model["mlp (final model)"]["ci_low"] == pytest.approx(alone[0]["ci_low"])
    [test] = [t for t in metrics["tests"] if t["section"] == "Fold ensemble against the final model"]
    assert test["extra"]["diff"] == pytest.approx(by_model["mlp (fold ensemble)"]["estimate"]
                                                  - by_model["mlp (final model)"]["estimate"])
    assert test["extra"]["diff_ci_low"] < test["extra"]["diff"] < test["extra"]["diff_ci_high"]
    assert test["method"] == "delong-paired-score"  # the score interval of the difference (issue 53)
    report = (tmp_path / "b" / "report.md").read_text()
    assert "## Fold ensemble against the final model" in report
    assert "The mean of the 5 fold models of toy run `a`" in report
    assert "Fold ensemble" not in (tmp_path / "f" / "report.md").read_text()


def test_fold_models_are_checksummed_and_can_be_left_out(cardio_cli, toy_site, tmp_path):
    cardio_cli(*RUN, "--set", "train.epochs=1", "--set", "fold_models=true", check=True)
    folder, _ = _site_b(toy_site, tmp_path)
    weights = tmp_path / "a" / "model" / "folds" / "fold2" / "weights.safetensors"
    good = weights.read_bytes()
    weights.write_bytes(good[:-4] + b"\0\0\0\0")
    check_refused(cardio_cli("predict", "--model", "a", "--cohort", str(folder), "--out", "x1"),
                  "fold2/weights.safetensors does not match its checksum")
    weights.write_bytes(good)
    (weights.parent.parent / "fold9").mkdir()
    (weights.parent.parent / "fold9" / "weights.safetensors").write_bytes(good)
    check_refused(cardio_cli("predict", "--model", "a", "--cohort", str(folder), "--out", "x2"),
                  "holds files it was not exported with: folds/fold9/weights.safetensors")
    cardio_cli("run", "--plugin", "toy", "--out", "lean", "--set", "train.epochs=1", check=True)  # the default
    assert not (tmp_path / "lean" / "model" / "folds").exists()
    assert "folds" not in json.loads((tmp_path / "lean" / "model" / "bundle.json").read_text())
    check_refused(cardio_cli("predict", "--model", "lean", "--cohort", str(folder), "--out", "x3", "--ensemble",
                             "folds"), "carries no fold models")


def test_without_the_deploy_service_a_run_keeps_no_fold_model_and_says_so(cardio_cli, tmp_path):
    """The fold models are the deploy service's to keep (cardio_deploy.folds): without it, `fold_models: true` leaves
    the final model alone in the bundle, and run.log says why."""
    from cardio import services

    deploy = services.installed().pm.unregister(name="deploy")
    try:
        cardio_cli("run", "--plugin", "toy", "--out", "r", "--set", "train.epochs=1", "--set", "fold_models=true",
                   check=True)
    finally:
        services.installed().pm.register(deploy, name="deploy")
    assert "folds" not in json.loads((tmp_path / "r" / "model" / "bundle.json").read_text())
    assert not list((tmp_path / "r" / "tasks").glob("fit-*/model"))
    assert ("fold_models: true, but the bundle holds the final model alone: the fold models are kept by the deploy "
            "service (cardio-crt-deploy") in (tmp_path / "r" / "run.log").read_text()


def test_a_target_with_one_class_is_named_and_the_report_still_written(cardio_cli, toy_site, trained, tmp_path):
    """Issue 41: a new cohort whose target has a single class gets its report, the target named with why."""
    _site_a(trained, tmp_path)
    folder, table = _site_b(toy_site, tmp_path)
    table.assign(label=1).to_csv(folder / "cohort.csv", index=False)
    proc = cardio_cli("predict", "--model", "a", "--cohort", str(folder), "--out", "b", check=True)
    assert "1 target(s) not evaluated on this cohort: label (one class)" in proc.stderr
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    [skipped] = metrics["not_evaluated"]
    assert skipped["task"] == "label" and skipped["positives"] == 120 and skipped["why"].startswith("one class")
    assert not [e for e in metrics["estimates"] if e["metric"] == "auc"]
    report = (tmp_path / "b" / "report.md").read_text()
    assert "## Targets not evaluated on this cohort" in report and "all 120 labelled records are 1" in report
    assert len(pd.read_csv(tmp_path / "b" / "predictions.csv")) == 120


def test_screen_keeps_every_target_it_can_and_says_why_of_the_others():
    from cardio import Predictions
    from cardio_deploy.external import screen

    rng = np.random.default_rng(0)
    parts = []
    for task, y, kind in (("wma", np.r_[np.ones(6), np.zeros(6)], "binary"),   # evaluable
                          ("t2_abnormal", np.zeros(12), "binary"),              # one class
                          ("lge", np.r_[1, np.zeros(11)], "binary"),            # one positive patient
                          ("ecv_pct", np.r_[28.0, 30.0, [np.nan] * 10], "regression")):  # two values
        keep = np.isfinite(y)
        for model in ("fused", "view"):
            parts.append(Predictions.from_arrays([f"s{i}" for i in range(12)], [f"p{i}" for i in range(12)], y,
                                                 rng.random(12), model=model, task=task, kind=kind).table[keep])
    kept, skipped = screen(Predictions(pd.concat(parts, ignore_index=True)), "study")
    assert set(kept.table["task"]) == {"wma"} and len(kept.table) == 24
    why = {s["task"]: s["why"] for s in skipped}
    assert why["t2_abnormal"].startswith("one class: all 12 labelled studies are 0")
    assert why["lge"].startswith("too few: 1 patient(s) with a positive and 11 with a negative")
    assert why["ecv_pct"].startswith("too few: 2 patient(s) have a value")
    assert {s["task"]: s["models"] for s in skipped} == {"t2_abnormal": 2, "lge": 2, "ecv_pct": 2}


def test_overlap_by_content_finds_files_copied_under_other_names(tmp_path):
    """The core's service for every plugin with a file column: a record whose file (or one of its clips) holds a
    training record's bytes is the same record, whatever it is called; features alone did not see it for echo,
    whose features name cached clips by their source path."""
    from cardio import Cohort, Features
    from cardio_deploy import fingerprints

    def cohort(folder, ids, contents):
        folder.mkdir()
        files = []
        for rid, content in zip(ids, contents):
            paths = []
            for j, part in enumerate(content):
                (folder / f"{rid}_{j}.dcm").write_bytes(part)
                paths.append(str(folder / f"{rid}_{j}.dcm"))
            files.append(tuple(paths))
        (folder / "template.npy").write_bytes(b"one file every row names")
        table = pd.DataFrame({"record_id": ids, "patient_id": ids, "video_A4C": files, "view": "A4C",
                              "template": str(folder / "template.npy")})
        return Cohort(table), Features(table, x={"A4C": [(f"/cache/{r}.npy",) for r in ids]})

    train = cohort(tmp_path / "a", ["r1", "r2", "r3"], [(b"clip1", b"clip1b"), (b"clip2",), (b"clip3",)])
    stored = {"salt": "s41", **fingerprints.fingerprints(train[1], "s41", train[0])}
    # the template every patient's row names is no record's content, here or in the new cohort
    assert len(stored["files"]) == 4 and not {"r1", "clip1"} & set(json.dumps(stored))
    new = cohort(tmp_path / "b", ["n1", "n2", "n3", "n4"], [(b"clip1", b"clip1b"), (b"other", b"clip2"),
                                                            (b"new",), (b"new2",)])
    assert fingerprints.overlap(new[1], stored, new[0]) == {"records": 4, "same_id": 0, "same_content": 2}
    # ids and features only
    assert fingerprints.overlap(new[1], stored) == {"records": 4, "same_id": 0, "same_content": 0}


def test_predict_reads_the_cohort_through_the_runs_own_stages_keeping_its_outcome_columns(tmp_path):
    """Issue 42: predict's copy of load -> preprocess dropped the outcome columns a rebuilt Cohort no longer
    declares; it now goes through the Study's one `cohort` (as a run does), which keeps the loaded ones."""
    import logging

    import pandas as pd
    import pluggy

    from cardio import Cohort, hookimpl, hookspecs
    from cardio.context import new_context
    from cardio.study import Study

    table = pd.DataFrame({"record_id": ["r1", "r2"], "patient_id": ["a", "b"], "label": [1, 0],
                          "lvef_6m": [40.0, 55.0]})

    class Rebuilds:
        @hookimpl
        def cardio_preprocess(self, cohort, config, ctx):
            return Cohort(cohort.table.copy(), level=cohort.level)  # the outcome declaration is not copied

    pm = pluggy.PluginManager("cardio")
    pm.add_hookspecs(hookspecs)
    pm.register(Rebuilds(), "rebuilds")
    cfg = {"seed": 0, "cache_dir": str(tmp_path / "cache")}
    ctx = new_context(cfg, tmp_path, logging.getLogger("test.predict"), device="cpu")
    study = Study("rebuilds", None, pm, PluginInfo(name="rebuilds", description=""))  # type: ignore[arg-type]
    cohort = study.cohort(cfg, ctx, Cohort(table, outcomes=("lvef_6m",)), check=False)
    assert cohort.outcomes == ("lvef_6m",)
